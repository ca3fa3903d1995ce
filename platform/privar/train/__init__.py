"""Training schemes, one readable loop each: adversarial (BDQ), distill (ELR), attention (STAT)."""
