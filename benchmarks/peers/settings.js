// Node-RED settings for benchmarks/peers/node_red.py: loopback only, no editor, and what the
// flow needs from outside its sandbox (the device table, the process's clock, CPU and memory).
const fs = require("fs");

function now() {
    return Number(process.hrtime.bigint()) / 1e9;
}

function report(stats) {
    const cpu = process.cpuUsage(stats.cpu0);
    return {
        messages: stats.messages,
        duplicates: stats.duplicates,
        unknown: stats.unknown,
        transitions: stats.transitions,
        seconds: now() - stats.t0,
        cpu_s: (cpu.user + cpu.system) / 1e6,
    };
}

module.exports = {
    uiHost: "127.0.0.1",
    uiPort: Number(process.env.BENCH_UI_PORT),
    httpAdminRoot: false,
    httpNodeRoot: false,
    flowFile: "flows.json",
    credentialSecret: false,
    telemetry: { enabled: false },
    logging: { console: { level: "warn", metrics: false, audit: false } },
    functionGlobalContext: {
        devices: JSON.parse(fs.readFileSync(process.env.BENCH_DEVICES, "utf8")),
        bench: { now, report, cpuUsage: () => process.cpuUsage() },
    },
};
