// The fleet dashboard (issue 7), served by the monitor: a live uPlot chart of every proxy's
// workload, a table of each proxy's state, and a log of state changes. The monitor's event
// stream (GET /v1/events) drives it: a report moves the chart and the proxy's row, a state
// change is logged and re-reads the list (GET /v1/proxies) for the fields only it has. Drain
// and undrain go to the monitor's admin API with the token typed in (kept for the tab only).
import uPlot from "uplot";

/** One proxy as GET /v1/proxies lists it (the fields shown). */
interface Listing {
  readonly id: string;
  readonly state: string;
  readonly health: string;
  readonly draining: boolean;
  readonly admin_drained: boolean;
  readonly workload: number | null;
  readonly calls: number | null;
  readonly registrations: number | null;
  readonly report_age_ms: number | null;
  readonly collection: string | null;
  readonly times_chosen: number;
}

/** GET /v1/events `report` and `state` (src/monitor/proxy-table.ts). */
interface ReportEvent {
  readonly proxy: string;
  readonly via: string;
  readonly workload: number;
  readonly calls: number;
  readonly registrations: number;
  readonly at: number;
}
interface StateEvent {
  readonly kind: string;
  readonly proxy: string;
  readonly eligible: boolean;
  readonly at: number;
  readonly reason?: string;
}

/** Chart points kept: 5 minutes at one a second. */
const HISTORY = 300;
const SAMPLE_MS = 1000;
const LIST_REFRESH_MS = 2000;
const COLORS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#ca8a04"];

const proxies = new Map<string, Listing & { receivedAt: number }>();
const times: number[] = [];
const series = new Map<string, (number | null)[]>();
let chart: uPlot | undefined;

function element<T extends HTMLElement>(id: string): T {
  const found = document.getElementById(id);
  if (found === null) throw new Error(`the page has no #${id}`);
  return found as T;
}

const tokenInput = element<HTMLInputElement>("token");
tokenInput.value = sessionStorage.getItem("sipsteer-admin-token") ?? "";
tokenInput.addEventListener("change", () =>
  sessionStorage.setItem("sipsteer-admin-token", tokenInput.value),
);

function cell(text: string, className?: string): HTMLTableCellElement {
  const td = document.createElement("td");
  td.textContent = text;
  if (className !== undefined) td.className = className;
  return td;
}

function number(value: number | null, digits = 0): string {
  return value === null ? "–" : value.toFixed(digits);
}

function ageOf(p: Listing & { receivedAt: number }): string {
  if (p.report_age_ms === null) return "–";
  const age = p.report_age_ms + (Date.now() - p.receivedAt);
  return age < 10_000 ? `${Math.round(age)} ms` : `${Math.round(age / 1000)} s`;
}

function renderTable(): void {
  const body = element<HTMLTableElement>("proxies").tBodies[0]!;
  const rows = [...proxies.values()].sort((a, b) => a.id.localeCompare(b.id));
  body.replaceChildren(
    ...rows.map((p) => {
      const tr = document.createElement("tr");
      tr.dataset.proxy = p.id;
      const button = document.createElement("button");
      button.textContent = p.admin_drained ? "Undrain" : "Drain";
      button.addEventListener(
        "click",
        () => void admin(p.id, p.admin_drained ? "undrain" : "drain"),
      );
      const action = document.createElement("td");
      action.append(button);
      tr.append(
        cell(p.id, "id"),
        cell(p.state, `state ${p.state}`),
        cell(p.health, "health"),
        cell(number(p.workload, 3), "workload"),
        cell(number(p.calls), "calls"),
        cell(number(p.registrations), "registrations"),
        cell(ageOf(p), "age"),
        cell(p.collection ?? "–", "collection"),
        cell(String(p.times_chosen), "chosen"),
        action,
      );
      return tr;
    }),
  );
}

async function refreshList(): Promise<void> {
  const res = await fetch("/v1/proxies", { cache: "no-store" });
  if (!res.ok) throw new Error(`GET /v1/proxies: ${res.status}`);
  const body = (await res.json()) as { proxies: Listing[] };
  const now = Date.now();
  const seen = new Set<string>();
  for (const p of body.proxies) {
    seen.add(p.id);
    proxies.set(p.id, { ...p, receivedAt: now });
  }
  for (const id of proxies.keys()) if (!seen.has(id)) proxies.delete(id);
  renderTable();
}

function onReport(e: ReportEvent): void {
  const p = proxies.get(e.proxy);
  if (p === undefined) {
    void refreshList();
    return;
  }
  proxies.set(e.proxy, {
    ...p,
    workload: e.workload,
    calls: e.calls,
    registrations: e.registrations,
    collection: e.via,
    report_age_ms: Math.max(0, Date.now() - e.at),
    receivedAt: Date.now(),
  });
  renderTable();
}

function onState(e: StateEvent): void {
  const line = document.createElement("li");
  line.className = `change ${e.kind}`;
  const at = new Date(e.at).toLocaleTimeString();
  line.textContent = `${at}  ${e.proxy}  ${e.kind}${e.reason === undefined ? "" : ` (${e.reason})`}${e.eligible ? "" : "  not eligible"}`;
  element("log").prepend(line);
  void refreshList();
}

async function admin(id: string, action: "drain" | "undrain"): Promise<void> {
  const error = element<HTMLParagraphElement>("admin-error");
  error.hidden = true;
  const res = await fetch(`/v1/admin/proxies/${encodeURIComponent(id)}/${action}`, {
    method: "POST",
    headers: { authorization: `Bearer ${tokenInput.value}` },
  });
  if (!res.ok) {
    const body = (await res.json().catch(() => ({}))) as { error?: string };
    error.textContent = `${action} ${id}: ${res.status} ${body.error ?? res.statusText}`;
    error.hidden = false;
    return;
  }
  await refreshList();
}

/** One point per proxy a second: the newest workload it reported. */
function sample(): void {
  times.push(Date.now() / 1000);
  for (const p of proxies.values()) {
    if (!series.has(p.id))
      series.set(
        p.id,
        times.map(() => null),
      );
  }
  for (const [id, values] of series) values.push(proxies.get(id)?.workload ?? null);
  if (times.length > HISTORY) {
    times.shift();
    for (const values of series.values()) values.shift();
  }
  drawChart();
}

function drawChart(): void {
  const ids = [...series.keys()].sort();
  const data = [times, ...ids.map((id) => series.get(id)!)] as uPlot.AlignedData;
  if (chart === undefined || chart.series.length !== ids.length + 1) {
    chart?.destroy();
    const target = element("chart");
    chart = new uPlot(
      {
        width: Math.max(480, target.clientWidth),
        height: 260,
        scales: { y: { range: (_u, _min, max) => [0, Math.max(1, max)] } },
        series: [
          {},
          ...ids.map((id, i) => ({
            label: id,
            stroke: COLORS[i % COLORS.length]!,
            width: 2,
            spanGaps: false,
          })),
        ],
        axes: [{}, { label: "workload" }],
      },
      data,
      target,
    );
    // For the tests (and a curious operator's console): the chart and its data.
    (window as unknown as { sipsteerChart: uPlot }).sipsteerChart = chart;
    return;
  }
  chart.setData(data);
}

function connect(): void {
  const status = element("connection");
  const events = new EventSource("/v1/events");
  events.addEventListener("open", () => {
    status.textContent = "live";
    status.className = "connection live";
    void refreshList();
  });
  events.addEventListener("error", () => {
    // EventSource reconnects by itself; say so meanwhile.
    status.textContent = "reconnecting…";
    status.className = "connection";
  });
  events.addEventListener("report", (m) => onReport(JSON.parse((m as MessageEvent<string>).data)));
  events.addEventListener("state", (m) => onState(JSON.parse((m as MessageEvent<string>).data)));
}

void refreshList().then(sample);
connect();
setInterval(sample, SAMPLE_MS);
// Times chosen and report ages move without a report; the list brings them.
setInterval(() => void refreshList().catch(() => undefined), LIST_REFRESH_MS);
