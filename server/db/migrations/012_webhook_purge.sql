-- Delivered webhook deliveries (and their attempts, by cascade) are purged after
-- 30 days by the hourly `webhook-purge` worker: it reads them by delivery time.
CREATE INDEX webhook_deliveries_delivered ON webhook_deliveries (delivered_at) WHERE status = 'delivered';
