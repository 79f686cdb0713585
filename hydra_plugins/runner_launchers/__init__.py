"""The runner's Hydra launchers (conf/hydra/launcher/): Hydra accepts launcher plugins only from the hydra_plugins
namespace, and imports every module here on every run, so these modules import little until a launcher is used."""
