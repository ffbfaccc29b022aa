"""bodyfit's shipped model files, installed as the package `bodyfit_models` (see `bodyfit_cli.shipped`)."""
