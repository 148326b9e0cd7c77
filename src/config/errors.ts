/**
 * Config problems are reported all at once, each pinned to where the user can
 * fix it: a file position for the mesh file, the flag or variable name for
 * command-line and environment settings.
 */

export interface SourcePosition {
  readonly file: string;
  /** 1-based. */
  readonly line: number;
  /** 1-based. */
  readonly column: number;
}

/** Enough of a bad value to recognise it; a pasted blob must not flood the terminal with itself. */
const QUOTE_MAX = 80;

/** A user's string as a message shows it: JSON-quoted, cut after QUOTE_MAX characters. */
export function quote(s: string): string {
  return s.length > QUOTE_MAX ? `${JSON.stringify(s.slice(0, QUOTE_MAX))}... (${s.length} characters)` : JSON.stringify(s);
}

/** One problem in a config file. */
export interface ConfigIssue extends SourcePosition {
  /** Where in the document, e.g. "services[2].backends[0].weight"; "" for the document itself. */
  readonly path: string;
  readonly message: string;
}

/** One problem in the agent settings, from whichever layer it came. */
export type SettingsIssue =
  | (ConfigIssue & { readonly origin: 'file' })
  | {
    readonly origin: 'flag' | 'env';
    /** "--report-interval" or "SOCKMESH_REPORT_INTERVAL". */
    readonly name: string;
    readonly message: string;
  };

/** "mesh.yaml:12:9 services[2].ports[0].port: must be an integer in 1..65535" */
export function formatConfigIssue(issue: ConfigIssue): string {
  const where = `${issue.file}:${issue.line}:${issue.column}`;
  return issue.path === '' ? `${where} ${issue.message}` : `${where} ${issue.path}: ${issue.message}`;
}

/** Like formatConfigIssue for the file layer; "env SOCKMESH_X: ..." / "flag --x: ..." otherwise. */
export function formatSettingsIssue(issue: SettingsIssue): string {
  return issue.origin === 'file' ? formatConfigIssue(issue) : `${issue.origin} ${issue.name}: ${issue.message}`;
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly code = 'ECONFIG';
  readonly issues: ConfigIssue[];

  constructor(issues: ConfigIssue[]) {
    super(issues.map(formatConfigIssue).join('\n'));
    this.issues = issues;
  }
}

/** The agent settings could not be merged; same code as ConfigError since the fix is the same kind. */
export class SettingsError extends Error {
  override readonly name = 'SettingsError';
  readonly code = 'ECONFIG';
  readonly issues: SettingsIssue[];

  constructor(issues: SettingsIssue[]) {
    super(issues.map(formatSettingsIssue).join('\n'));
    this.issues = issues;
  }
}
