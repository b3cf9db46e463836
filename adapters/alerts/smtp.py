"""E-mail through an SMTP relay: STARTTLS (required unless turned off), then credentials."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage

from referral_gateway.domain.alerts import ALERT_TITLE, Alert, alert_text
from referral_gateway.services.errors import DeliveryFailed


class EmailSender:
    def __init__(
        self,
        *,
        host: str,
        port: int,
        sender: str,
        base_url: str,
        username: str = "",
        password: str = "",
        starttls: bool = True,
        ca_file: str = "",
        timeout: float = 10.0,
    ) -> None:
        self.host, self.port, self.sender = host, port, sender
        self.base_url = base_url.rstrip("/")
        self.username, self._password = username, password
        self.starttls = starttls
        self.ca_file = ca_file
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"EmailSender({self.host}:{self.port})"

    def message(self, alert: Alert, to: str) -> EmailMessage:
        text = alert_text(alert)
        msg = EmailMessage()
        msg["From"] = self.sender
        msg["To"] = to
        msg["Subject"] = f"{ALERT_TITLE}: {text}"
        msg.set_content(f"{text}\n\n{self.base_url}{alert.link}\n")
        return msg

    def __call__(self, alert: Alert, to: str) -> None:
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                if self.starttls:
                    context = ssl.create_default_context(cafile=self.ca_file or None)
                    smtp.starttls(context=context)
                if self.username:
                    smtp.login(self.username, self._password)
                smtp.send_message(self.message(alert, to))
        except smtplib.SMTPResponseException as exc:
            raise DeliveryFailed(f"smtp {exc.smtp_code}", permanent=False) from None
        except Exception as exc:
            raise DeliveryFailed(f"smtp {type(exc).__name__}") from None
