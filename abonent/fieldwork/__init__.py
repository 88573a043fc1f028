"""Field work and the warehouse (issue 18): devices by serial number moved through a small stock state machine, and
technician jobs made from connection and repair requests, closed by the installer from a phone."""
