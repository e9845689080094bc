"""Own-fleet deliveries: vehicles' GPS positions turned into geofence events and shipment positions."""
