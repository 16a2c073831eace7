"""CLI subcommands, one module each (registered in :mod:`unihoi_ros.cli`)."""
