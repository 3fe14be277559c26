"""What a method is built from: the ``Method`` contract and ``TrainContext``, the train and test
sets on a device, components (selectors, reweighters), metrics, phases, models and noisy labels."""
