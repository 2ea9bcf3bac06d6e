"""Reading BoLD exactly as released, the synthetic BoLD, and the tensors the models consume."""
