"""Language-model backends behind one batched protocol."""
