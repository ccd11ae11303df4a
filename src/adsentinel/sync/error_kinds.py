"""What kind of failure a sync error is, and the sentence that tells it in the reader's language.

Meta's own error text is English and changes with Meta's wording, so no catalog can hold it word
for word. The sync stores, beside that text, a stable *kind* derived from Meta's error code and
subcode (or from the failure itself when Meta gave none): ``sync_runs.error_kind`` for a failed
run, ``ad_accounts.needs_attention_kind`` for the mark the sync puts on an account a person must
fix. Whoever shows the error (``adsentinel status``, the dashboard's status panel and banner,
the "sync broken" alert) tells the kind's sentence in the reader's language and keeps Meta's text
as the detail. Pure: codes in, a kind out; a kind and a language in, text out.

======================  =============================================  =========================
kind                    when                                           Meta's codes
======================  =============================================  =========================
``token_expired``       the token expired, was revoked or is no token  102, 190
``permission``          the token lacks ads_read or this account       10, 200-299
``version_retired``     the pinned Graph API version was retired       2635
``appsecret_required``  the app asks for ``appsecret_proof``           100 naming appsecret_proof
``throttled``           Meta's rate limits, beyond the run's allowance 4, 17, 32, 613, 80000-80014
``meta_unavailable``    Meta kept failing (unknown error, down)        1, 2, or none after retries
``request_refused``     Meta refused the request itself                any other code
``report_jobs_slow``    Meta's report jobs ran longer than allowed     (no code)
``bad_response``        Meta's answer was not of the expected shape    (no code)
``token_missing``       the account's token variable is not set        (no code)
``other``               anything else (settings, the database ...)     (no code)
======================  =============================================  =========================
"""

from __future__ import annotations

from adsentinel.i18n import DEFAULT_LOCALE, N_, Language
from adsentinel.sync.rate_limits import (
    AUTH_CODES,
    PERMISSION_CODES,
    THROTTLE_CODES,
    TRANSIENT_CODES,
    VERSION_RETIRED_CODES,
)

#: what each kind means, for a reader (the ``messages`` catalog translates it)
ERROR_SENTENCES: dict[str, str] = {
    "token_expired": N_("Meta's access token expired or is invalid"),
    "permission": N_("Meta's access token lacks permission on this ad account"),
    "version_retired": N_("the Graph API version this installation asks for was retired by "
                          "Meta"),
    "appsecret_required": N_("the Meta app requires appsecret_proof"),
    "throttled": N_("Meta's rate limits asked to wait longer than a sync may"),
    "meta_unavailable": N_("Meta kept failing or could not be reached"),
    "request_refused": N_("Meta refused the request"),
    "report_jobs_slow": N_("Meta's report jobs took longer than a sync may wait"),
    "bad_response": N_("Meta's answer did not have the expected shape"),
    "token_missing": N_("the account's access token cannot be found"),
    "other": N_("the sync failed"),
}
#: what a person does about a kind that stops the account's sync until then
WHAT_TO_DO: dict[str, str] = {
    "token_expired": N_("Meta's access token expired or is invalid: create a new token with "
                        "ads_read on this account, put it in the account's token variable, then "
                        "run `adsentinel accounts enable` (or `accounts add`)"),
    "permission": N_("Meta's access token lacks permission on this ad account: create a token "
                     "with ads_read on it, put it in the account's token variable, then run "
                     "`adsentinel accounts enable` (or `accounts add`)"),
    "version_retired": N_("the Graph API version this installation asks for was retired by "
                          "Meta: set ADSENTINEL_META_API_VERSION to a version Meta still serves, "
                          "then run `adsentinel accounts enable`"),
    "appsecret_required": N_("the Meta app requires appsecret_proof: put the app secret in an "
                             "environment variable, set ADSENTINEL_META_APP_SECRET_ENV to its "
                             "NAME, then run `adsentinel accounts enable`"),
}
#: a kind's sentence with Meta's (or the sync's) own words as the detail
WITH_DETAIL = N_("%(what)s (%(detail)s)")
ERROR_KINDS = tuple(ERROR_SENTENCES)


def meta_error_kind(code: int | None, subcode: int | None = None, message: str = "") -> str:
    """The kind of an error Meta answered with ``code`` (and ``subcode``; ``message`` only
    tells the appsecret_proof refusal, which shares code 100 with other refusals); a failure
    without a code is ``meta_unavailable`` (the network, or Meta's 5xx after the retries)."""
    if code in AUTH_CODES:
        return "token_expired"
    if code in PERMISSION_CODES:
        return "permission"
    if code in VERSION_RETIRED_CODES:
        return "version_retired"
    if code == 100 and "appsecret_proof" in message:
        return "appsecret_required"
    if code in THROTTLE_CODES:
        return "throttled"
    if code is None or code in TRANSIENT_CODES:
        return "meta_unavailable"
    return "request_refused"


def error_sentence(lang: Language, kind: str | None, detail: str | None) -> str:
    """A stored error told in ``lang``: its kind's sentence with ``detail`` (Meta's own text)
    in brackets; without a known kind (a run from before kinds were stored), ``detail`` as the
    catalog has it, else as written."""
    if kind not in ERROR_SENTENCES:
        return lang.gettext(detail) if detail else lang.gettext(ERROR_SENTENCES["other"])
    what = lang.gettext(ERROR_SENTENCES[kind])
    return lang.gettext(WITH_DETAIL, what=what, detail=detail) if detail else what


def attention_sentence(lang: Language, kind: str | None, mark: str) -> str:
    """An account's attention ``mark`` in ``lang``. The sync writes its marks in English with
    the particulars (the code, the token variable's name): English readers get the mark as
    written; others the what-to-do of its ``kind`` in their language. A mark without a kind (a
    person's, or one from before kinds were stored) stays as written, unless the catalog holds
    its exact words."""
    if kind in WHAT_TO_DO and lang.locale != DEFAULT_LOCALE:
        return lang.gettext(WHAT_TO_DO[kind])
    return lang.gettext(mark)


__all__ = ["ERROR_KINDS", "ERROR_SENTENCES", "WHAT_TO_DO", "attention_sentence",
           "error_sentence", "meta_error_kind"]
