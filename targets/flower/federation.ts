/**
 * A Flower federation on this machine, driven from Node: a real `flower-superlink` (TLS, SuperNode
 * authentication) and `flower-supernode` processes on 127.0.0.1, or a SuperLink in simulation mode, then
 * `flwr run` of the app in this directory. Used by `teenygrad federate`, test/flower.test.ts and
 * bench/federated.ts. Every process gets its own FLWR_HOME (a temporary directory): Flower's config file,
 * apps and state stay there, and stop() finds every process of this federation by it, including the
 * SuperExec processes Flower starts in sessions of their own.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { fail } from "../../compiler/errors.js";
import { teenygradCacheDir } from "../wasmtime/runner.js";

export const FLWR_VERSION = "1.42.0"; // keep in sync with scripts/install-flower.sh and pyproject.toml
/** this directory: the Flower app (pyproject.toml, teenygrad_flower/) */
export const FLOWER_APP = fileURLToPath(new URL(".", import.meta.url));

/** The venv of scripts/install-flower.sh: $TEENYGRAD_FLOWER_VENV, else ${TEENYGRAD_CACHE:-~/.cache/teenygrad}/flower-<version>; null when absent. */
export function findFlowerVenv(): string | null {
  const venv = process.env.TEENYGRAD_FLOWER_VENV ?? join(teenygradCacheDir(), `flower-${FLWR_VERSION}`);
  return existsSync(join(venv, "bin", "flower-superlink")) ? venv : null;
}

/** JSON whose integers of 16+ digits (Flower's u64 node ids) stay exact, as strings */
export function parseJsonExact(text: string): any {
  return JSON.parse(text.slice(text.indexOf("{")).replace(/:\s*(\d{16,})\b/g, ': "$1"'));
}

export type RunConfig = Record<string, string | number | boolean>;

/** A process of the federation: its output so far (stdout and stderr, line by line) and its exit. */
export class FlowerProcess {
  readonly lines: string[] = [];
  readonly exited: Promise<number | null>;
  private waiters: { pattern: RegExp; resolve: (line: string) => void }[] = [];

  constructor(readonly name: string, readonly child: ChildProcess, onLine?: (name: string, line: string) => void) {
    let partial = "";
    const take = (chunk: Buffer) => {
      const text = partial + chunk.toString();
      const lines = text.split("\n");
      partial = lines.pop()!;
      for (const raw of lines) {
        const line = raw.replace(/\x1b\[[0-9;]*m/g, "");
        this.lines.push(line);
        onLine?.(name, line);
        this.waiters = this.waiters.filter((w) => !(w.pattern.test(line) && (w.resolve(line), true)));
      }
    };
    child.stdout!.on("data", take);
    child.stderr!.on("data", take);
    this.exited = new Promise((done) => child.on("exit", (code) => done(code)));
  }

  get output(): string {
    return this.lines.join("\n");
  }

  /** the first output line matching `pattern` (already printed or still to come); fails after `seconds` or when the process exits first */
  waitFor(pattern: RegExp, seconds: number): Promise<string> {
    const seen = this.lines.find((l) => pattern.test(l));
    if (seen) return Promise.resolve(seen);
    return new Promise((resolvePromise, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.name}: no line matching ${pattern} within ${seconds} s; its output:\n${this.output.slice(-3000)}`)), seconds * 1000);
      this.waiters.push({ pattern, resolve: (line) => (clearTimeout(timer), resolvePromise(line)) });
      this.exited.then((code) => {
        clearTimeout(timer);
        reject(new Error(`${this.name} exited (code ${code}) before printing ${pattern}; its output:\n${this.output.slice(-3000)}`));
      });
    });
  }

  /** SIGKILL to the process and everything in its process group (a SuperNode and its ClientApp) */
  kill(): void {
    try {
      process.kill(-this.child.pid!, "SIGKILL");
    } catch {
      // already gone
    }
  }
}

export async function freePort(): Promise<number> {
  return new Promise((done, reject) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => done(port));
    }).on("error", reject);
  });
}

const toml = (value: string | number | boolean): string => (typeof value === "string" ? JSON.stringify(value) : String(value));

export interface SuperLinkOptions {
  /** TLS with certificates made for this federation (default true; false: --insecure) */
  tls?: boolean;
  /** only SuperNodes whose public key was registered may connect (needs TLS) */
  auth?: boolean;
  /** Flower's simulation engine: the SuperLink runs virtual SuperNodes itself */
  simulation?: boolean;
}

export class Federation {
  readonly processes: FlowerProcess[] = [];
  readonly env: NodeJS.ProcessEnv;
  readonly credentials: string;
  port = 0;

  /** `dir`: a fresh directory for Flower's home, the credentials and the app's output */
  constructor(readonly venv: string, readonly dir: string, private readonly onLine?: (name: string, line: string) => void) {
    this.credentials = join(dir, "credentials");
    this.env = {
      ...process.env,
      PATH: `${join(venv, "bin")}:${process.env.PATH}`,
      FLWR_HOME: join(dir, "flwr-home"),
      FLWR_DISABLE_UPDATE_CHECK: "1",
      FLWR_TELEMETRY_ENABLED: "0",
      PYTHONUNBUFFERED: "1",
    };
  }

  private spawn(name: string, command: string, args: string[]): FlowerProcess {
    const child = spawn(join(this.venv, "bin", command), args, { env: this.env, cwd: this.dir, detached: true, stdio: ["ignore", "pipe", "pipe"] });
    const p = new FlowerProcess(name, child, this.onLine);
    this.processes.push(p);
    return p;
  }

  /** runs a Flower CLI command to completion; fails with its output on a non-zero exit */
  private cli(args: string[]): string {
    const r = spawnSync(join(this.venv, "bin", "flwr"), args, { env: this.env, cwd: this.dir, encoding: "utf8", timeout: 120_000 });
    if (r.status !== 0) fail(`flwr ${args.join(" ")} failed (${r.error?.message ?? `exit ${r.status}`}):\n${r.stdout}\n${r.stderr}`);
    return r.stdout;
  }

  /** a CA, the SuperLink's certificate for 127.0.0.1 and `supernodes` SuperNode key pairs (supernode-<i>, supernode-<i>.pub) */
  makeCredentials(supernodes: number): void {
    const r = spawnSync(join(this.venv, "bin", "python"), ["-m", "teenygrad_flower.credentials", this.credentials, "--supernodes", String(supernodes)], { cwd: FLOWER_APP, env: this.env, encoding: "utf8" });
    if (r.status !== 0) fail(`generating the federation's certificates failed:\n${r.stderr}`);
  }

  supernodeKey(i: number): string {
    return join(this.credentials, `supernode-${i}`);
  }

  async startSuperLink(opts: SuperLinkOptions = {}): Promise<void> {
    const { tls = true, auth = false, simulation = false } = opts;
    this.port = await freePort();
    const security = tls
      ? ["--ssl-ca-certfile", join(this.credentials, "ca.crt"), "--ssl-certfile", join(this.credentials, "server.pem"), "--ssl-keyfile", join(this.credentials, "server.key")]
      : ["--insecure"];
    const superlink = this.spawn("superlink", "flower-superlink", [
      ...security, ...(auth ? ["--enable-supernode-auth"] : []), ...(simulation ? ["--simulation"] : []),
      // the app's dependencies are the venv's; the SuperLink must not install packages at run time
      "--disable-runtime-dependency-installation", "--host", "127.0.0.1", "--port", String(this.port),
    ]);
    const home = this.env.FLWR_HOME!;
    mkdirSync(home, { recursive: true });
    writeFileSync(join(home, "config.toml"), [
      `[superlink]`, `default = "federation"`, ``, `[superlink.federation]`, `address = "127.0.0.1:${this.port}"`,
      tls ? `root-certificates = ${toml(join(this.credentials, "ca.crt"))}` : `insecure = true`, ``,
    ].join("\n"));
    await superlink.waitFor(/Uvicorn running on/, 120);
  }

  /** registers a SuperNode's public key with the SuperLink; returns its node id */
  registerSupernode(publicKey: string): string {
    const out = this.cli(["supernode", "register", publicKey, "federation", "--format", "json"]);
    return String(parseJsonExact(out)["node-id"]);
  }

  /** a SuperNode with this node config (partition-id, num-partitions, …), authenticated with the private key at `key` when given */
  async startSupernode(name: string, nodeConfig: RunConfig, key?: string): Promise<FlowerProcess> {
    const tls = existsSync(join(this.credentials, "ca.crt"));
    const config = Object.entries(nodeConfig).map(([k, v]) => `${k}=${toml(v)}`).join(" ");
    return this.spawn(name, "flower-supernode", [
      ...(tls ? ["--root-certificates", join(this.credentials, "ca.crt")] : ["--insecure"]),
      ...(key ? ["--auth-supernode-private-key", key] : []),
      "--superlink", `127.0.0.1:${this.port}`, "--node-config", config,
      // each SuperNode's own runtime API for its ClientApp processes
      "--port", String(await freePort()),
    ]);
  }

  /** the SuperNodes the SuperLink sees online now */
  onlineSupernodes(): string[] {
    const out = this.cli(["supernode", "list", "federation", "--format", "json"]);
    const nodes = (parseJsonExact(out).nodes ?? []) as { "node-id": string | number; status: string }[];
    return nodes.filter((n) => n.status === "online").map((n) => String(n["node-id"]));
  }

  async waitOnline(count: number, seconds: number): Promise<void> {
    const deadline = Date.now() + seconds * 1000;
    while (this.onlineSupernodes().length < count) {
      if (Date.now() > deadline) fail(`only ${this.onlineSupernodes().length} of ${count} SuperNodes came online within ${seconds} s`);
      await new Promise((r) => setTimeout(r, 1000));
    }
  }

  /** `flwr run` of the app with these run-config overrides, streaming the ServerApp's log; resolves when the run ends */
  run(runConfig: RunConfig, federationConfig: RunConfig = {}): FlowerProcess {
    const args = ["run", FLOWER_APP, "federation", "--stream"];
    for (const [k, v] of Object.entries(runConfig)) args.push("--run-config", `${k}=${toml(v)}`);
    for (const [k, v] of Object.entries(federationConfig)) args.push("--federation-config", `${k}=${toml(v)}`);
    return this.spawn("flwr run", "flwr", args);
  }

  /**
   * Ends every process of this federation: SIGTERM, then SIGKILL after `graceSeconds`, to the process groups
   * it started and to every process whose environment carries this federation's FLWR_HOME (Flower starts
   * SuperExec and app processes in sessions of their own).
   */
  async stop(graceSeconds = 5): Promise<void> {
    const signalAll = (signal: NodeJS.Signals) => {
      for (const p of this.processes) {
        try {
          process.kill(-p.child.pid!, signal);
        } catch {
          // already gone
        }
      }
      for (const pid of this.strayPids()) {
        try {
          process.kill(pid, signal);
        } catch {
          // already gone
        }
      }
    };
    signalAll("SIGTERM");
    const deadline = Date.now() + graceSeconds * 1000;
    while (Date.now() < deadline && (this.processes.some((p) => p.child.exitCode === null && p.child.signalCode === null) || this.strayPids().length)) {
      await new Promise((r) => setTimeout(r, 200));
    }
    signalAll("SIGKILL");
  }

  private strayPids(): number[] {
    const marker = `FLWR_HOME=${this.env.FLWR_HOME}\0`;
    const pids: number[] = [];
    for (const entry of readdirSync("/proc")) {
      if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
      try {
        if ((readFileSync(`/proc/${entry}/environ`, "latin1") + "\0").includes(marker)) pids.push(Number(entry));
      } catch {
        // exited meanwhile, or not ours to read
      }
    }
    return pids;
  }
}

/** What the ServerApp writes to <out-dir>/history.json after every round (server_app.py). */
export interface FederationHistory {
  strategy: string;
  partitioning: string;
  clients: number;
  parameters: number;
  done: boolean;
  rounds: RoundRecord[];
}

export interface ClientUpdate {
  node: string;
  partition: number;
  examples: number;
  /** null when no step completed */
  loss: number | null;
  status: number;
}

export interface RoundRecord {
  round: number;
  /** held-out loss and accuracy of the global model after the round (round 0: the initial model) */
  loss: number;
  accuracy: number;
  "train-loss"?: number | null;
  "federated-accuracy"?: number | null;
  "bytes-down"?: number;
  "bytes-up"?: number;
  clients?: ClientUpdate[];
  excluded?: ClientUpdate[];
  failures?: { stage: string; node: string; reason: string }[];
  seconds?: number;
}

export function readHistory(outDir: string): FederationHistory | null {
  try {
    return parseJsonExact(readFileSync(join(outDir, "history.json"), "utf8")) as FederationHistory;
  } catch {
    return null;
  }
}

export interface LocalFederationOptions {
  blob: string;
  dataDir: string;
  outDir: string;
  clients: number;
  rounds: number;
  localEpochs?: number;
  strategy?: "fedavg" | "fedprox";
  nonIid?: boolean;
  /** Flower's simulation engine instead of a SuperLink and SuperNode processes */
  simulation?: boolean;
  /** further run-config values (pyproject.toml's [tool.flwr.app.config]) */
  config?: RunConfig;
  /** called with the history whenever the ServerApp has finished another round */
  onRound?: (history: FederationHistory) => void;
  onLine?: (name: string, line: string) => void;
  /** the whole run's limit */
  timeoutSeconds?: number;
}

/**
 * The whole federation on 127.0.0.1 for one run: a SuperLink with TLS and SuperNode authentication, one
 * registered SuperNode per client, `flwr run`; or the same app in the simulation engine. Always stops every
 * process before returning.
 */
export async function runLocalFederation(venv: string, dir: string, o: LocalFederationOptions): Promise<FederationHistory> {
  const federation = new Federation(venv, dir, o.onLine);
  try {
    if (o.simulation) await federation.startSuperLink({ tls: false, simulation: true });
    else {
      federation.makeCredentials(o.clients);
      await federation.startSuperLink({ tls: true, auth: true });
      for (let i = 0; i < o.clients; i++) {
        federation.registerSupernode(`${federation.supernodeKey(i)}.pub`);
        await federation.startSupernode(`supernode ${i}`, { "partition-id": i, "num-partitions": o.clients }, federation.supernodeKey(i));
      }
      await federation.waitOnline(o.clients, 120);
    }
    const run = federation.run(localRunConfig(o), o.simulation ? { "num-supernodes": o.clients } : {});
    let reported = 0;
    const poll = setInterval(() => {
      const history = readHistory(o.outDir);
      if (history && history.rounds.length > reported) {
        reported = history.rounds.length;
        o.onRound?.(history);
      }
    }, 250);
    const limit = new Promise<"timeout">((done) => setTimeout(() => done("timeout"), (o.timeoutSeconds ?? 1800) * 1000).unref());
    const code = await Promise.race([run.exited, limit]).finally(() => clearInterval(poll));
    const history = readHistory(o.outDir);
    if (code === "timeout") fail(`the federation did not finish within ${o.timeoutSeconds} s; flwr run printed:\n${run.output.slice(-3000)}`);
    if (code !== 0 || !history?.done) fail(`flwr run ${code === 0 ? "ended before the ServerApp finished" : `exited with ${code}`}:\n${run.output.slice(-3000)}`);
    if (history.rounds.length > reported) o.onRound?.(history);
    return history;
  } finally {
    await federation.stop();
  }
}

/** The run config of a local federation (the keys of pyproject.toml's [tool.flwr.app.config]). */
export function localRunConfig(o: LocalFederationOptions): RunConfig {
  return {
    blob: resolve(o.blob), "data-dir": resolve(o.dataDir), "out-dir": resolve(o.outDir),
    "num-server-rounds": o.rounds, "local-epochs": o.localEpochs ?? 2, strategy: o.strategy ?? "fedavg",
    partitioning: o.nonIid ? "dirichlet" : "iid", clients: o.clients, "min-nodes": Math.min(2, o.clients), ...o.config,
  };
}
