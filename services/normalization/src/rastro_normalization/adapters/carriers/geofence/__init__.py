"""The geofence processor's own codes (``GEOFENCE-*``): what an own-fleet vehicle's positions said."""
