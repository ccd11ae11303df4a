"""Detection: the hourly cycle of an account.

* :mod:`.service` is the one entry point (:func:`~.service.run_detection`): the account's
  verified models read once, the new days judged and stored, refused model files marked and
  handed back for retraining, alerts planned; it returns a :class:`~.service.DetectionRun`;
* :mod:`.account` reads the rows to judge and their history, runs the pure detectors of
  :mod:`adsentinel.detect` and stores (upserts, retracts) the anomalies;
* :mod:`.impact` reads the earlier anomalies an anomaly's money at stake and run start need.
"""
