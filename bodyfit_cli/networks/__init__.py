"""Shared pieces of the learned methods' networks: the state they read and write, MLP blocks, weight files."""
