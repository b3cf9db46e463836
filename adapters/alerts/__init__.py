"""Alert channels: Web Push (`webpush`), e-mail through an SMTP relay (`email`) and a
team-chat webhook (`webhook`). Each sends one `domain.alerts.Alert` and raises
`services.errors.DeliveryFailed` with a short reason; none knows about referrals or people."""
