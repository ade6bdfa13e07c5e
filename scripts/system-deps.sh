#!/usr/bin/env bash
# Installs the real services the tests talk to (Debian / Ubuntu): Mosquitto, socat, Chromium
# (driven by selenium and by Playwright, with fonts-noto-cjk for Chinese in screenshots),
# PostgreSQL, NATS (the clustered MQTT broker of deploy/nats), VictoriaMetrics (the
# /api/v2/write server for the InfluxDB sink; Debian's influxdb 1.6 lacks it) and systemd's
# tools (systemd-analyze verifies the units in deploy/).
set -euo pipefail
need=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
command -v socat >/dev/null 2>&1 || need+=(socat)
command -v chromium >/dev/null 2>&1 || need+=(chromium chromium-driver)
# CJK glyphs for the console's and the phone page's screenshots (Chinese renders as boxes without)
dpkg -s fonts-noto-cjk >/dev/null 2>&1 || need+=(fonts-noto-cjk)
command -v victoria-metrics >/dev/null 2>&1 || [ -x /usr/bin/victoria-metrics ] || need+=(victoria-metrics)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || need+=(postgresql)
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)  # verifies the deploy/ units
command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ] || need+=(nats-server)
[ ${#need[@]} -eq 0 ] && exit 0
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
