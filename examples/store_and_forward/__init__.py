"""The store-and-forward example: a MIMI server that holds no MLS state, and its adapter on the kit."""
