"""Foundations every other layer may use: errors, atomic writes, specs, configs, hyper-parameters,
identities, records, seeding. Imports nothing else of nlbench (see CONTRIBUTING, "Layers")."""
