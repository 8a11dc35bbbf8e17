"""Reproducible deployment: the compose stack, the Nix flake's inputs and the static checks behind them."""
