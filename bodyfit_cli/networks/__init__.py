"""The networks of the learned backends: the state they share, the regressor, the LGD update network, weight files."""
