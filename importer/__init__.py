"""Access-log import: web-server logs into the hits pipeline (`clickstream import-log`)."""
