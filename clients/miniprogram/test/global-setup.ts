/**
 * Starts the real server once for the run (scripts/serve_for_tests.py: the
 * embedded default with the demo, uvicorn and the job cluster) and stops it after.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { TestProject } from "vitest/node";

export interface ServerInfo {
  url: string;
  pid: number;
  env: Record<string, string>;
  python: string;
  script: string;
  logs: string;
}

declare module "vitest" {
  export interface ProvidedContext {
    server: ServerInfo;
  }
}

const HERE = dirname(fileURLToPath(import.meta.url));
const REPO = resolve(HERE, "../../..");

function python(): string {
  if (process.env.AUCTION_PYTHON) return process.env.AUCTION_PYTHON;
  const venv = resolve(REPO, ".venv/bin/python");
  return existsSync(venv) ? venv : "python3";
}

let child: ChildProcess | null = null;

export async function setup(project: TestProject): Promise<void> {
  const script = resolve(HERE, "../scripts/serve_for_tests.py");
  child = spawn(python(), [script, "serve"], { cwd: REPO, stdio: ["pipe", "pipe", "inherit"] });
  const info = await new Promise<ServerInfo>((done, fail) => {
    let buffer = "";
    child!.stdout!.on("data", (chunk: Buffer) => {
      buffer += chunk.toString();
      const line = buffer.split("\n").find((text) => text.trim().startsWith("{"));
      if (line) done(JSON.parse(line) as ServerInfo);
    });
    child!.on("exit", (code) => fail(new Error(`serve_for_tests.py exited with ${code} before answering`)));
  });
  project.provide("server", info);
}

export async function teardown(): Promise<void> {
  if (!child || child.exitCode !== null) return;
  const exited = new Promise((done) => child!.once("exit", done));
  child.kill("SIGTERM");
  // The timer cleared once the server is gone: a pending one holds the run open for its 30 s.
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([exited, new Promise((done) => (timer = setTimeout(done, 30_000)))]);
  clearTimeout(timer);
  if (child.exitCode === null) child.kill("SIGKILL");
}
