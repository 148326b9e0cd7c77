/**
 * The Grafana dashboard against the exporter it graphs: every metric a PromQL
 * expression names must be one a real PrometheusExporter exposes, with the
 * labels the expression matches or groups by, and used as its type allows
 * (counters through rate(), buckets through histogram_quantile() by le).
 * The exported names come from the exporter's exposition, never from a list
 * here, so renaming a metric or a label breaks this test.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { repoRoot } from '../../../src/bpf/native';
import { PrometheusExporter } from '../../../src/exporters/prometheus';
import { Aggregator } from '../../../src/telemetry/aggregator';
import { Directory } from '../../../src/telemetry/directory';
import type { Connection } from '../../../src/telemetry/record';
import { whole } from '../../helpers/records';

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj => (typeof v === 'object' && v !== null ? (v as Obj) : {});
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

const FILE = path.join(repoRoot, 'daemonset', 'dashboards', 'sockmesh.json');
const dashboard = obj(JSON.parse(fs.readFileSync(FILE, 'utf8')));
const variables = list(obj(dashboard.templating).list).map(obj);

/** Every panel, rows included, also those inside collapsed rows. */
function allPanels(panels: unknown[]): Obj[] {
  return panels.map(obj).flatMap((p) => [p, ...allPanels(list(p.panels))]);
}
const panels = allPanels(list(dashboard.panels));
const graphPanels = panels.filter((p) => p.type !== 'row');
const targetsOf = (p: Obj): Obj[] => list(p.targets).map(obj);

/** Labels Prometheus itself attaches to every series it scrapes (target labels), not the exporter. */
const TARGET_LABELS = ['instance', 'job'];
/** Variables Grafana defines itself. */
const GRAFANA_VARIABLES = new Set(['__rate_interval', '__interval', '__interval_ms', '__range', '__range_s', '__range_ms']);
const DATASOURCE_REFS = new Set(['${datasource}', '$datasource']);

// ---- what the exporter exposes: read from a real one ----

interface Exposed {
  /** metric family -> TYPE (counter, gauge, histogram, ...) */
  types: Map<string, string>;
  /** series name as queried (name, or name_bucket/_sum/_count for histograms) -> label names seen on it */
  labels: Map<string, Set<string>>;
}

/**
 * An agent's exporter, default process metrics on as in the agent, fed one
 * record of each kind and an agent collector with every optional part set, so
 * that each family exposes at least one series and thereby its label names.
 */
async function exposed(): Promise<Exposed> {
  const dir = new Directory();
  dir.workloads.set(100, { name: 'frontend', namespace: 'demo' });
  dir.services.set(1, { service: 'demo/api', portName: 'http' });
  dir.addBackend(7, { endpoint: '10.0.0.7:8080', labels: {}, serviceId: 1 });
  const agg = new Aggregator(dir);
  const prom = new PrometheusExporter();
  prom.attach(agg);
  prom.setAgentCollector(() => ({
    records: 3, ringDropped: 0, decodeErrors: 0, openConnections: 0, services: 1, workloads: 1, configRejected: false,
    otlp: { endpoint: 'http://127.0.0.1:4317', exported: 0, failed: 0, dropped: 0 },
    verdicts: [{ service: 'demo/api:http', verdict: 'rewritten', count: 1 }],
    programs: [{ hook: 'connect4', runs: 10, runNs: 5000 }],
  }));
  const base = {
    cgroupId: 100, side: 'client' as const, family: 4 as const,
    local: { address: '10.1.0.5', port: 40000 }, remote: { address: '10.0.0.7', port: 8080 }, vip: { address: '10.96.0.10', port: 80 },
    serviceId: 1, backendId: 7, startNs: 1, durationNs: 5_000_000, bytesSent: 10, bytesReceived: 20, connectUs: 100,
    srttUs: { last: 50, min: 50, max: 50 }, retransmits: 1,
  };
  const recs: Connection[] = [
    { ...base, cookie: 1n, kind: 'close', closeCause: 'rst_received', error: 0 },
    { ...base, cookie: 2n, kind: 'connect_failed', error: 111 },
  ];
  for (const r of recs) agg.ingest(whole(r));
  const text = await prom.metrics();

  const types = new Map<string, string>();
  for (const [, name, type] of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) types.set(name!, type!);
  const labels = new Map<string, Set<string>>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s/.exec(line);
    assert.ok(m, `unparsable exposition line: ${line}`);
    const set = labels.get(m[1]!) ?? new Set<string>();
    for (const [, l] of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="(?:[^"\\]|\\.)*"/g)) set.add(l!);
    labels.set(m[1]!, set);
  }
  return { types, labels };
}

/** The family and type of a series name as PromQL uses it, or undefined when the exporter has no such series. */
function familyOf(series: string, e: Exposed): { family: string; type: string } | undefined {
  const t = e.types.get(series);
  if (t) return { family: series, type: t };
  const m = /^(.*)_(bucket|sum|count)$/.exec(series);
  const ht = m ? e.types.get(m[1]!) : undefined;
  return ht === 'histogram' || ht === 'summary' ? { family: m![1]!, type: ht } : undefined;
}

// ---- a PromQL reader: enough to find metrics, their matchers and the labels grouped by ----

interface MetricUse {
  metric: string;
  /** label names of its {...} matchers */
  matchers: string[];
  /** functions and aggregations it sits in, outermost first */
  within: string[];
}
interface Grouping {
  kind: 'by' | 'without' | 'on' | 'ignoring' | 'group_left' | 'group_right';
  labels: string[];
  /** the series its scope covers (filled by the time parsing ends) */
  metrics: Set<string>;
}
interface Analysis {
  uses: MetricUse[];
  groupings: Grouping[];
  /** [...] contents: ranges and subqueries */
  ranges: string[];
}

const AGGREGATIONS = new Set(['sum', 'min', 'max', 'avg', 'group', 'stddev', 'stdvar', 'count', 'count_values', 'bottomk', 'topk', 'quantile', 'limitk', 'limit_ratio']);
const KEYWORDS = new Set(['and', 'or', 'unless', 'bool', 'offset', 'atan2', 'inf', 'nan']);
const LABEL_LISTS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right']);

type Tok = { t: 'ident' | 'num' | 'str' | 'var' | '(' | ')' | ',' | 'op' | 'matchers' | 'range'; v: string };

function closing(s: string, i: number, close: string): number {
  for (let j = i + 1; j < s.length; j++) {
    const c = s[j]!;
    if (c === '"' || c === "'" || c === '`') j = endOfString(s, j);
    else if (c === close) return j;
  }
  throw new Error(`unbalanced ${s[i]} at ${i} in: ${s}`);
}
function endOfString(s: string, i: number): number {
  const q = s[i]!;
  for (let j = i + 1; j < s.length; j++) {
    if (s[j] === '\\' && q !== '`') j++;
    else if (s[j] === q) return j;
  }
  throw new Error(`unterminated string at ${i} in: ${s}`);
}

function tokenize(expr: string): Tok[] {
  const toks: Tok[] = [];
  let i = 0;
  while (i < expr.length) {
    const c = expr[i]!;
    const rest = expr.slice(i);
    let m: RegExpExecArray | null;
    if (/\s/.test(c)) i++;
    else if (c === '"' || c === "'" || c === '`') { const j = endOfString(expr, i); toks.push({ t: 'str', v: expr.slice(i, j + 1) }); i = j + 1; }
    else if (c === '{') { const j = closing(expr, i, '}'); toks.push({ t: 'matchers', v: expr.slice(i + 1, j) }); i = j + 1; }
    else if (c === '[') { const j = closing(expr, i, ']'); toks.push({ t: 'range', v: expr.slice(i + 1, j) }); i = j + 1; }
    else if (c === '(' || c === ')' || c === ',') { toks.push({ t: c, v: c }); i++; }
    else if ((m = /^(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?/.exec(rest))) { toks.push({ t: 'num', v: m[0] }); i += m[0].length; }
    else if ((m = /^\$\{?\w+\}?/.exec(rest))) { toks.push({ t: 'var', v: m[0] }); i += m[0].length; }
    else if ((m = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(rest))) { toks.push({ t: 'ident', v: m[0] }); i += m[0].length; }
    else if ((m = /^(?:==|!=|<=|>=|=~|!~|[-+*/%^<>])/.exec(rest))) { toks.push({ t: 'op', v: m[0] }); i += m[0].length; }
    else throw new Error(`unexpected ${JSON.stringify(c)} at ${i} in: ${expr}`);
  }
  return toks;
}

/** Label names of a {...} matcher list. */
function matcherLabels(body: string): string[] {
  const out: string[] = [];
  const re = /\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)\s*(,|$)/y;
  let m: RegExpExecArray | null;
  while (re.lastIndex < body.length && (m = re.exec(body))) out.push(m[1]!);
  if (re.lastIndex < body.trimEnd().length) throw new Error(`unparsable matchers {${body}}`);
  return out;
}

function analyze(expr: string): Analysis {
  const toks = tokenize(expr);
  const out: Analysis = { uses: [], groupings: [], ranges: [] };
  interface Frame { fn: string | undefined; metrics: Set<string>; groupings: Grouping[] }
  const root: Frame = { fn: undefined, metrics: new Set(), groupings: [] };
  const stack: Frame[] = [root];
  let pendingFn: string | undefined;
  let pendingGrouping: Grouping | undefined;
  let lastClosed: Frame | undefined;
  for (let i = 0; i < toks.length; i++) {
    const tok = toks[i]!;
    const top = stack[stack.length - 1]!;
    const next = toks[i + 1];
    if (tok.t === 'range') out.ranges.push(tok.v);
    else if (tok.t === 'matchers') throw new Error(`a selector without a metric name ({${tok.v}}) is not supported here`);
    else if (tok.t === '(') {
      stack.push({ fn: pendingFn, metrics: new Set(), groupings: pendingGrouping ? [pendingGrouping] : [] });
      for (const g of stack[stack.length - 1]!.groupings) g.metrics = stack[stack.length - 1]!.metrics;
      pendingFn = undefined;
      pendingGrouping = undefined;
    } else if (tok.t === ')') {
      const f = stack.pop();
      if (!f || stack.length === 0) throw new Error(`unbalanced ) in: ${expr}`);
      for (const m of f.metrics) stack[stack.length - 1]!.metrics.add(m);
      lastClosed = f;
    } else if (tok.t === 'ident') {
      const word = tok.v;
      const prev = toks[i - 1];
      if (LABEL_LISTS.has(word)) {
        const labels: string[] = [];
        if (next?.t === '(') {
          let j = i + 2;
          for (; toks[j] && toks[j]!.t !== ')'; j++) {
            if (toks[j]!.t === 'ident') labels.push(toks[j]!.v);
            else if (toks[j]!.t !== ',') throw new Error(`unexpected ${toks[j]!.v} in ${word}(...) of: ${expr}`);
          }
          i = j;
        }
        const g: Grouping = { kind: word as Grouping['kind'], labels, metrics: new Set() };
        out.groupings.push(g);
        if (word === 'by' || word === 'without') {
          // sum(...) by (x): the aggregation just closed; sum by (x) (...): the one about to open.
          if (prev?.t === ')' && lastClosed) { g.metrics = lastClosed.metrics; lastClosed.groupings.push(g); }
          else pendingGrouping = g;
        } else {
          // Binary matching: its labels belong to the operands around it, checked against the enclosing scope.
          g.metrics = top.metrics;
        }
      } else if (AGGREGATIONS.has(word) && (next?.t === '(' || next?.v === 'by' || next?.v === 'without')) pendingFn = word;
      else if (next?.t === '(') pendingFn = word;
      else if (KEYWORDS.has(word.toLowerCase())) continue;
      else {
        const matchers = next?.t === 'matchers' ? matcherLabels(next.v) : [];
        if (next?.t === 'matchers') i++;
        out.uses.push({ metric: word, matchers, within: stack.map((f) => f.fn).filter((f): f is string => !!f) });
        top.metrics.add(word);
      }
    }
  }
  if (stack.length !== 1) throw new Error(`unbalanced ( in: ${expr}`);
  return out;
}

// ---- the checks, as one list of problems naming panel and metric ----

const RATES = new Set(['rate', 'irate', 'increase']);

/**
 * Problems of one PromQL expression of the dashboard; `where` names the panel
 * (and target) for the message. `labelValues`: the expression is the series
 * selector of a label_values(expr, label) variable query, which lists series
 * rather than graphing them: no type rules, and `label` must be on them.
 */
function problems(where: string, expr: string, e: Exposed, labelValues?: string): string[] {
  const out: string[] = [];
  let a: Analysis;
  try {
    a = analyze(expr);
  } catch (err) {
    return [`${where}: ${(err as Error).message}`];
  }
  if (a.uses.length === 0) out.push(`${where}: no metric found in ${JSON.stringify(expr)}`);
  const labelsOf = (series: string): Set<string> => new Set([...(e.labels.get(series) ?? []), ...TARGET_LABELS]);
  for (const u of a.uses) {
    const fam = familyOf(u.metric, e);
    if (!fam) {
      out.push(`${where} uses ${u.metric}, which the agent does not export`);
      continue;
    }
    const have = labelsOf(u.metric);
    for (const l of u.matchers) {
      if (l !== '__name__' && !have.has(l)) out.push(`${where}: ${u.metric} has no label "${l}" (it has: ${[...have].sort().join(', ')})`);
    }
    if (labelValues !== undefined) {
      if (!have.has(labelValues)) out.push(`${where}: label_values over ${u.metric}, which has no label "${labelValues}"`);
      continue;
    }
    const inner = u.within[u.within.length - 1];
    const counterLike = fam.type === 'counter' || u.metric !== fam.family;
    if (counterLike && !RATES.has(inner ?? '')) out.push(`${where}: ${u.metric} is a ${fam.type === 'counter' ? 'counter' : `${fam.type} series`}: graph it through rate(), not ${inner ?? 'raw'}`);
    if (!counterLike && RATES.has(inner ?? '')) out.push(`${where}: ${u.metric} is a ${fam.type}: ${inner}() of it means nothing`);
    if (u.metric.endsWith('_bucket') && fam.type === 'histogram' && !u.within.includes('histogram_quantile')) out.push(`${where}: ${u.metric} outside histogram_quantile()`);
    if (u.metric === fam.family && fam.type === 'histogram') out.push(`${where}: ${u.metric} is a histogram: query ${u.metric}_bucket, _sum or _count`);
  }
  for (const g of a.groupings) {
    const metrics = [...g.metrics];
    for (const l of g.labels) {
      if (g.kind === 'by' || g.kind === 'without') {
        for (const m of metrics.filter((m) => familyOf(m, e) && !labelsOf(m).has(l))) out.push(`${where}: ${g.kind} (${g.labels.join(', ')}): ${m} has no label "${l}"`);
      } else if (!metrics.some((m) => labelsOf(m).has(l))) {
        out.push(`${where}: ${g.kind} (${g.labels.join(', ')}): no metric in scope has label "${l}"`);
      }
    }
    if (g.kind === 'by' && metrics.some((m) => m.endsWith('_bucket') && familyOf(m, e)?.type === 'histogram') && !g.labels.includes('le')) {
      out.push(`${where}: by (${g.labels.join(', ')}) over ${metrics.join(', ')} drops "le": histogram_quantile() gets no buckets`);
    }
  }
  for (const r of a.ranges) {
    if (r !== '$__rate_interval' && r !== '$__range') out.push(`${where}: range [${r}]: use [$__rate_interval] (or [$__range] for a whole-range total)`);
  }
  return out;
}

const queryOf = (v: Obj): string => (typeof v.query === 'string' ? v.query : String(obj(v.query).query ?? ''));

/** Every PromQL expression of the dashboard with where it is; label_values(expr, label) split into both. */
function expressions(): Array<{ where: string; expr: string; label?: string }> {
  const out: Array<{ where: string; expr: string; label?: string }> = [];
  for (const p of graphPanels) {
    for (const t of targetsOf(p)) out.push({ where: `panel "${String(p.title)}" (target ${String(t.refId)})`, expr: String(t.expr ?? '') });
  }
  for (const v of variables.filter((v) => v.type === 'query')) {
    const q = queryOf(v);
    const lv = /^\s*label_values\(\s*([\s\S]*),\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)\s*$/.exec(q);
    const where = `variable $${String(v.name)}`;
    if (lv) out.push({ where, expr: lv[1]!, label: lv[2]! });
    else out.push({ where, expr: q });
  }
  return out;
}

// ---- tests ----

test('the dashboard is Grafana JSON, schema 39, on a Prometheus datasource variable', () => {
  assert.equal(dashboard.schemaVersion, 39);
  assert.equal(typeof dashboard.title, 'string');
  assert.equal(typeof dashboard.uid, 'string');
  const ds = variables.find((v) => v.name === 'datasource');
  assert.ok(ds, 'a template variable named "datasource"');
  assert.equal(ds.type, 'datasource');
  assert.equal(ds.query, 'prometheus');
  const names = new Set(variables.map((v) => String(v.name)));
  assert.equal(names.size, variables.length, 'variable names are unique');
  for (const n of ['instance', 'service', 'workload']) assert.ok(names.has(n), `a template variable $${n}`);
  for (const v of variables.filter((v) => v.type === 'query')) {
    assert.ok(DATASOURCE_REFS.has(String(obj(v.datasource).uid)), `variable $${String(v.name)} queries the $datasource variable, not ${JSON.stringify(v.datasource)}`);
  }
});

test('every $variable an expression uses is defined', () => {
  const names = new Set(variables.map((v) => String(v.name)));
  const texts = [
    ...graphPanels.flatMap((p) => targetsOf(p).map((t) => ({ where: `panel "${String(p.title)}"`, text: String(t.expr ?? '') }))),
    ...variables.filter((v) => v.type === 'query').map((v) => ({ where: `variable $${String(v.name)}`, text: queryOf(v) })),
  ];
  for (const { where, text } of texts) {
    for (const [, a, b] of text.matchAll(/\$(?:\{(\w+)(?::\w+)?\}|(\w+))|\[\[(\w+)\]\]/g)) {
      const n = a ?? b!;
      assert.ok(names.has(n) || GRAFANA_VARIABLES.has(n), `${where} uses $${n}, which is no template variable`);
    }
  }
});

test('every panel has a unique id, a title, the datasource variable and a target; the grid is sane', () => {
  assert.ok(graphPanels.length >= 10, `only ${graphPanels.length} panels`);
  const ids = new Map<number, string>();
  for (const p of panels) {
    const title = typeof p.title === 'string' ? p.title : '';
    assert.ok(title.trim() !== '', `panel id ${String(p.id)} has no title`);
    assert.ok(Number.isInteger(p.id), `panel "${title}" has no integer id`);
    assert.ok(!ids.has(p.id as number), `panels "${ids.get(p.id as number)}" and "${title}" share id ${String(p.id)}`);
    ids.set(p.id as number, title);
    const g = obj(p.gridPos);
    for (const k of ['x', 'y', 'w', 'h']) assert.ok(Number.isInteger(g[k]), `panel "${title}": gridPos.${k}`);
    assert.ok((g.x as number) + (g.w as number) <= 24, `panel "${title}" is wider than the 24-column grid`);
  }
  for (const p of graphPanels) {
    const title = String(p.title);
    assert.ok(DATASOURCE_REFS.has(String(obj(p.datasource).uid)), `panel "${title}": datasource must be the $datasource variable, is ${JSON.stringify(p.datasource)}`);
    const targets = targetsOf(p);
    assert.ok(targets.length > 0, `panel "${title}" has no target`);
    const refIds = new Set<string>();
    for (const t of targets) {
      assert.ok(typeof t.expr === 'string' && t.expr.trim() !== '', `panel "${title}": target ${String(t.refId)} has no expr`);
      assert.ok(!refIds.has(String(t.refId)), `panel "${title}": refId ${String(t.refId)} twice`);
      refIds.add(String(t.refId));
      if (t.datasource !== undefined) assert.ok(DATASOURCE_REFS.has(String(obj(t.datasource).uid)), `panel "${title}": target ${String(t.refId)} datasource`);
    }
    assert.equal(typeof obj(obj(p.fieldConfig).defaults).unit, 'string', `panel "${title}" has no unit`);
  }
  // Panels of one row must not overlap (Grafana would silently move them).
  const boxes = graphPanels.map((p) => ({ title: String(p.title), ...(obj(p.gridPos) as { x: number; y: number; w: number; h: number }) }));
  for (const [i, a] of boxes.entries()) {
    for (const b of boxes.slice(i + 1)) {
      const overlap = a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
      assert.ok(!overlap, `panels "${a.title}" and "${b.title}" overlap`);
    }
  }
});

test('every metric and label the dashboard queries is one the agent exports, used as its type allows', async () => {
  const e = await exposed();
  assert.ok(e.types.has('sockmesh_connections_opened_total') && e.types.has('sockmesh_agent_process_cpu_seconds_total'), 'the exposition was read');
  const exprs = expressions();
  const found = exprs.flatMap(({ where, expr, label }) => problems(where, expr, e, label));
  assert.deepEqual(found, [], `\n${found.join('\n')}`);
  const used = new Set(exprs.flatMap(({ expr }) => analyze(expr).uses.map((u) => u.metric)));
  assert.ok(used.size >= 10, `the reader found only ${[...used].join(', ')}`);
});

test('the checker itself catches a renamed metric, a missing label, a dropped le and a raw counter', async () => {
  const e = await exposed();
  const check = (expr: string): string => problems('panel "T"', expr, e).join('\n');
  assert.equal(check('histogram_quantile(0.99, sum by (le, service) (rate(sockmesh_connect_duration_seconds_bucket{side="client"}[$__rate_interval])))'), '');
  assert.equal(check('sum(rate(sockmesh_connections_failed_total[$__rate_interval])) by (instance) / on (instance) sum by (instance) (sockmesh_open_connections)'), '');
  assert.match(check('sum by (le) (rate(sockmesh_connect_duration_seconds_bucket[$__rate_interval]))'), /outside histogram_quantile\(\)/);
  assert.match(check('rate(sockmesh_connections_opend_total[$__rate_interval])'), /panel "T" uses sockmesh_connections_opend_total, which the agent does not export/);
  assert.match(check('sum by (cluster) (rate(sockmesh_timeouts_total[$__rate_interval]))'), /sockmesh_timeouts_total has no label "cluster"/);
  assert.match(check('rate(sockmesh_retransmits_total{direction="sent"}[$__rate_interval])'), /sockmesh_retransmits_total has no label "direction"/);
  assert.match(check('sockmesh_ring_dropped_total{verdict="x"}'), /has no label "verdict".*\n.*counter: graph it through rate\(\)/);
  assert.match(check('histogram_quantile(0.99, sum by (service) (rate(sockmesh_srtt_seconds_bucket[$__rate_interval])))'), /drops "le"/);
  assert.match(check('rate(sockmesh_services[$__rate_interval])'), /sockmesh_services is a gauge/);
  assert.match(check('sum(rate(sockmesh_sent_bytes_total[5m]))'), /range \[5m\]/);
  assert.match(problems('variable $x', 'sockmesh_config_rejected', e, 'service').join('\n'), /no label "service"/);
});
