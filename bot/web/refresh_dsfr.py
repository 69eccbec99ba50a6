"""Refresh the vendored subset of the State's design system (DSFR) from the npm registry.

    python -m bot.web.refresh_dsfr [VERSION]

Runs `npm pack @gouvfr/dsfr@VERSION`, then copies into bot/web/static/dsfr/ only what the back
office uses: the core CSS and the components listed below (concatenated into one file), the
Marianne fonts (woff2), the utility icons listed below, the licence and a PROVENANCE file with
the package's version and integrity. Nothing else of the package is kept.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

DEFAULT_VERSION = "1.15.3"
TARGET = Path(__file__).resolve().parent / "static" / "dsfr"
# In the order of the full build (dsfr.min.css): later components build on earlier ones.
COMPONENTS = [
    "link", "button", "form", "input", "select", "checkbox", "badge", "logo",
    "skiplink", "callout", "alert", "pagination", "table", "breadcrumb", "header", "footer",
]  # fmt: skip
ICONS = {  # utility icon → its family folder
    "download-line": "system",
    "logout-box-r-line": "system",
}
# Upright Marianne only: the pages use no italics (the CSS's other faces are never fetched).
FONTS = ["Marianne-Light", "Marianne-Regular", "Marianne-Medium", "Marianne-Bold"]
FONT = re.compile(r"url\(\.\./fonts/([^)]+)\)")
COMPONENT_ICON = re.compile(r"url\((?:\.\./)+icons/([a-z-]+)/([a-z0-9-]+)\.svg\)")


def pack(version: str, work: Path) -> tuple[Path, dict[str, str]]:
    """`npm pack` the package into `work`; returns the unpacked folder and npm's metadata."""
    out = subprocess.run(
        ["npm", "pack", "--json", f"@gouvfr/dsfr@{version}"],
        cwd=work,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    meta = json.loads(out)[0]
    with tarfile.open(work / meta["filename"]) as tar:
        tar.extractall(work, filter="data")
    return work / "package", meta


def build(package: Path, meta: dict[str, str]) -> None:
    dist = package / "dist"
    if TARGET.exists():
        shutil.rmtree(TARGET)
    (TARGET / "fonts").mkdir(parents=True)
    (TARGET / "icons").mkdir()
    css = [FONT.sub(r"url(fonts/\1)", (dist / "core" / "core.min.css").read_text("utf-8"))]
    for name in COMPONENTS:
        css.append((dist / "component" / name / f"{name}.min.css").read_text("utf-8"))
    # the icons the components themselves draw (badges, alerts, links…): copied and re-pointed
    for family, icon in sorted(set(COMPONENT_ICON.findall("".join(css)))):
        shutil.copy(dist / "icons" / family / f"{icon}.svg", TARGET / "icons" / f"{icon}.svg")
    css = [COMPONENT_ICON.sub(r"url(icons/\2.svg)", part) for part in css]
    icon_css = (dist / "utility" / "icons" / "icons.min.css").read_text("utf-8")
    for icon, family in ICONS.items():
        rule = re.search(
            rf"\.fr-icon-{re.escape(icon)}:after,\.fr-icon-{re.escape(icon)}:before\{{[^}}]*\}}",
            icon_css,
        )
        if rule is None:
            raise SystemExit(f"icon {icon} not found in DSFR {meta['version']}")
        css.append(re.sub(r"url\([^)]*/([^/)]+\.svg)\)", r"url(icons/\1)", rule.group(0)))
        shutil.copy(dist / "icons" / family / f"{icon}.svg", TARGET / "icons" / f"{icon}.svg")
    (TARGET / "dsfr.min.css").write_text("\n".join(css), "utf-8")
    for font in FONTS:
        shutil.copy(dist / "fonts" / f"{font}.woff2", TARGET / "fonts" / f"{font}.woff2")
    shutil.copy(package / "LICENSE.md", TARGET / "LICENSE.md")
    (TARGET / "PROVENANCE").write_text(
        "\n".join(
            [
                f"package: @gouvfr/dsfr {meta['version']}",
                f"tarball: {meta['filename']}",
                f"integrity: {meta['integrity']}",
                f"shasum: {meta['shasum']}",
                "licence: Etalab 2.0 with the DSFR terms of use (LICENSE.md)",
                "kept: dist/core/core.min.css and, concatenated after it, dist/component/"
                "{" + ",".join(COMPONENTS) + "}/*.min.css → dsfr.min.css;",
                "      utility icons " + ", ".join(ICONS) + " (rules appended to dsfr.min.css)",
                "      and the icons those components draw (SVG files in icons/);",
                "      dist/fonts/{" + ",".join(FONTS) + "}.woff2 in fonts/",
                "refresh: python -m bot.web.refresh_dsfr [VERSION]",
                "",
            ]
        ),
        "utf-8",
    )


def main(argv: list[str]) -> int:
    version = argv[0] if argv else DEFAULT_VERSION
    with tempfile.TemporaryDirectory() as tmp:
        package, meta = pack(version, Path(tmp))
        build(package, meta)
    print(f"DSFR {meta['version']} → {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
