"""Step 1 of the app: which environment, and the API token. Widgets only.

The token is never kept in widget state: the password field sends its value when the
analyst presses Enter or leaves it (``continuous_update=False``), and the panel then takes
the token into a private holder in kernel memory and empties the field at once. A saved
notebook therefore holds no token, and no widget's value, description or repr shows it.
Changing the environment forgets the token.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import ipywidgets as w

from spectrum_tools.client import Secret
from spectrum_tools.environments import Environment, custom_environment
from spectrum_tools.errors import ConfigError
from spectrum_tools.widgets import _render

__all__ = ["CUSTOM", "EnvironmentPanel"]

CUSTOM: Final = "<custom URL>"


class EnvironmentPanel:
    """Environment dropdown, custom URL, production badge and the token field.

    Parameters
    ----------
    environments
        Name -> environment, the sandbox first (from
        :func:`~spectrum_tools.environments.load_environments`).
    selected
        The name selected at first.
    token_in_environment
        Whether ``SPECTRUM_API_TOKEN`` is set (then no token needs typing).
    """

    def __init__(
        self,
        environments: Mapping[str, Environment],
        selected: str,
        *,
        token_in_environment: bool,
    ) -> None:
        self._environments = dict(environments)
        self._token_in_environment = token_in_environment
        self._token: Secret | None = None
        self._sandbox = False
        options = [(env.label(), name) for name, env in self._environments.items()]
        options.append(("custom URL…", CUSTOM))
        if selected not in self._environments and selected != CUSTOM:
            raise ConfigError(
                f"no environment {selected!r} (known: {', '.join(self._environments)})"
            )
        self.dropdown = w.Dropdown(
            options=options,
            value=selected,
            description="Environment",
            layout=w.Layout(width="640px"),
            style={"description_width": "110px"},
        )
        self.custom_url = w.Text(
            placeholder="https://your-spectrum-host",
            description="Base URL",
            layout=w.Layout(width="640px", display="none"),
            style={"description_width": "110px"},
        )
        self.badge = w.HTML()
        self.token = w.Password(
            placeholder="API token, then Enter (kept in memory only, never saved)",
            description="API token",
            continuous_update=False,
            layout=w.Layout(width="640px"),
            style={"description_width": "110px"},
        )
        self.token_note = w.HTML()
        self.test_button = w.Button(description="Test connection", icon="plug")
        self.note = w.HTML()
        self.note.add_class("spectrum-note")
        self.dropdown.observe(self._changed, names="value")
        self.custom_url.observe(self._changed, names="value")
        self.token.observe(self._token_typed, names="value")
        self.box = w.VBox(
            [
                w.HTML("<h3>1. Environment</h3>"),
                self.dropdown,
                self.custom_url,
                self.badge,
                self.token,
                self.token_note,
                w.HBox([self.test_button, self.note]),
            ]
        )
        self._changed()

    def selected(self) -> Environment:
        """The chosen environment.

        Raises
        ------
        ConfigError
            A custom URL that is empty or not usable.
        """
        if self.dropdown.value == CUSTOM:
            if not self.custom_url.value.strip():
                raise ConfigError("type the custom environment's base URL (https://...)")
            return custom_environment(self.custom_url.value)
        return self._environments[self.dropdown.value]

    def typed_token(self) -> str | None:
        """The token typed for this environment (None when none was)."""
        self._token_typed()  # a value the observer has not seen yet (never normally)
        return self._token.reveal() if self._token is not None else None

    def _token_typed(self, _change: object = None) -> None:
        value = self.token.value.strip()
        if not value:
            return
        self._token = Secret(value)
        self.token.value = ""
        self._show_token_note()

    def environment(self, name: str) -> Environment:
        """The environment called ``name`` in the menu."""
        return self._environments[name]

    def select(self, name: str) -> None:
        """Pick the environment ``name`` (as if chosen in the menu)."""
        self.dropdown.value = name

    def find(self, host: str) -> str | None:
        """The name of the environment whose host is ``host``, if one is."""
        for name, env in self._environments.items():
            if not env.is_sandbox and env.host == host:
                return name
        return None

    def _changed(self, _change: object = None) -> None:
        self._token = None
        self.note.value = ""
        custom = self.dropdown.value == CUSTOM
        self.custom_url.layout.display = None if custom else "none"
        try:
            env = self.selected()
        except ConfigError as exc:
            self.badge.value = _render.badge("custom", f"CUSTOM URL: {exc}")
            env = None
        if env is not None:
            self.badge.value = _badge(env, custom)
        self._sandbox = env is not None and env.is_sandbox
        hide = self._sandbox or self._token_in_environment
        self.token.layout.display = "none" if hide else None
        self._show_token_note()

    def _show_token_note(self) -> None:
        if self._sandbox:
            text = "The sandbox needs no token."
        elif self._token_in_environment:
            text = "Token: already set up on this computer."
        elif self._token is not None:
            text = "Token received: kept in memory only, never saved (type it again to change it)."
        else:
            text = (
                "Token: type it above and press Enter. The box empties at once; the token is "
                "kept in memory only and never saved."
            )
        self.token_note.value = _render.info_line(text)


def _badge(env: Environment, custom: bool) -> str:
    if env.is_sandbox:
        return _render.badge(
            "sandbox", "SANDBOX: a practice copy of Spectrum on this computer; nothing real changes"
        )
    if custom:
        return _render.badge(
            "custom",
            f"CUSTOM URL {env.host}: treated as PRODUCTION; type {env.name!r} to confirm a send",
        )
    if env.production:
        return _render.badge(
            "production",
            f"\u26a0 PRODUCTION {env.name} ({env.host}): sending changes real orders; "
            f"type {env.name!r} to confirm",
        )
    return _render.badge("staging", f"{env.name} ({env.host}): not production")
