"""The learned methods, one folder each, with the same four modules:

* `network.py`: the network, a plain `torch.nn.Module` (spin reuses the regressor's);
* `fit.py`: the backend `--method` runs (and `--init`, for the regressors), loading the shipped weights;
* `train.py`: how it trains: `train(cfg, model, data, out, checkpoint, resume, progress)`, returning the
  validation scores, and `describe(logs)`, a step's progress line; for the regressor, LGD and hund, the shared
  synthetic-view trainer (`training.trainer`) given the method's network and forward pass (`STEP`);
* `recipe.py`: `RECIPE`, the shipped weight's configuration, which `bodyfit train <method>` trains with no
  options, `OPTIONS`, the fields that command shows, `FILE`, the weight file's name, and `SUMMARY`, its help.

A method is chosen by one line of `fitting.registry.METHODS`; `bodyfit train` makes a command for each
method whose line points into this folder (its package is also named in pyproject.toml's package list, which
`tests/test_package.py` checks). Nothing below this layer imports these modules: the image and
video pipelines reach a method through the registry, by name.
"""
