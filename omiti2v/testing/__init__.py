"""Models built offline for the tests, the smoke run (`make eval` with `-tiny` models, `judge=tiny*`) and the
planner's real-size shapes: random weights, locally trained tokenizers, the real processor and model classes.
Their answers are meaningless; the product code imports them only when one is asked for."""
