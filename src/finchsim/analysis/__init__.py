"""How finchsim evaluates `analysis/`: targets, queries, and the judgements made from them."""
