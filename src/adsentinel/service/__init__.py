"""Services: the I/O around the pure maths (training, detection, evaluation)."""
