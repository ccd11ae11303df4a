"""Pulling an ad account's structure and daily insights from the Meta Marketing API.

* :mod:`.payloads` turns Graph API objects into validated rows (pure);
* :mod:`.rate_limits` reads Meta's usage headers and decides how long to wait (pure);
* :mod:`.meta_client` makes the calls through the official ``facebook-business`` SDK: paging,
  asynchronous report jobs, retries;
* :mod:`.errors` holds the sync's errors and the scrubbing of access tokens from any text;
* :mod:`.health` decides when a failing sync is broken and words the message (pure);
* :mod:`.error_kinds` names the kind of a failure from Meta's codes and tells it in the reader's
  language (pure);
* :mod:`.account_changes` records a currency or timezone change Meta reports, and tells
  detection and training from which day an account's history compares;
* :mod:`.service` runs one account's sync and stores what was pulled, each run in ``sync_runs``.
"""
