"""The registry: communities, grids, device locations, workers, shifts, positions, posts.

Tables live beside the ingest and alarm tables (``create_registry_tables``); reads come back
as frozen dataclasses (``load_registry``); each file format has a pure reader/writer and a DB
import/export. ``write_demo_district`` writes a fictional district to import.
"""

from cloud.registry.demo import make_demo_district, write_demo_district
from cloud.registry.district import check_district, import_district
from cloud.registry.model import (
    Community,
    DeviceLocation,
    Grid,
    Locale,
    Point,
    Position,
    Registry,
    Role,
    Shift,
    Worker,
)
from cloud.registry.shifts import Roster, shift_covers
from cloud.registry.store import (
    export_communities_csv,
    export_device_locations_csv,
    export_grids_geojson,
    export_shifts_csv,
    export_workers_csv,
    import_communities_csv,
    import_device_locations_csv,
    import_grids_geojson,
    import_shifts_csv,
    import_workers_csv,
    load_registry,
    record_position,
    set_duty_commander,
    set_grid_supervisor,
)
from cloud.registry.tables import create_registry_tables

__all__ = [
    "Community",
    "DeviceLocation",
    "Grid",
    "Locale",
    "Point",
    "Position",
    "Registry",
    "Role",
    "Roster",
    "Shift",
    "Worker",
    "check_district",
    "create_registry_tables",
    "export_communities_csv",
    "export_device_locations_csv",
    "export_grids_geojson",
    "export_shifts_csv",
    "export_workers_csv",
    "import_communities_csv",
    "import_device_locations_csv",
    "import_district",
    "import_grids_geojson",
    "import_shifts_csv",
    "import_workers_csv",
    "load_registry",
    "make_demo_district",
    "record_position",
    "set_duty_commander",
    "set_grid_supervisor",
    "shift_covers",
    "write_demo_district",
]
