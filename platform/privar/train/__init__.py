"""Training schemes, one readable loop each: adversarial (BDQ), distill (ELR), attention (STAT);
their registry with one signature (``schemes``) and the frozen spec of a training run
(``spec``). No study and no Ray connection here: a recipe hands the loops what they need."""
