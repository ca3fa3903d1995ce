"""The commands, one readable file each, top to bottom; the only code that reads a whole study.

* ``run_study``: ``privar run`` and ``privar resume``;
* ``train_once``: ``privar train``;
* ``attack``: ``privar farm --run`` / ``--checkpoint``;
* ``select_front``: ``privar pareto``;
* ``submit``: ``privar submit`` and ``privar status``;
* ``common``: the study file loaded with its checks, and the study turned into the frozen specs
  that ``search``, ``farm`` and ``train`` take (:class:`~privar.train.spec.TrainSpec`,
  :class:`~privar.farm.spec.FarmSpec`, :class:`~privar.search.spec.SearchSpec`).
"""
