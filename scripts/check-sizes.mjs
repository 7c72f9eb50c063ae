#!/usr/bin/env node
// npm run check:sizes (also run by `npm test` before jest): fails when a file in src/, scripts/ or jobs/ is over
// MAX_FILE_LINES lines or a function in one is over MAX_FUNCTION_LINES. Functions are found with the TypeScript
// compiler's parser (.ts, .js, .mjs, .cjs) and with Python's own `ast` module for .py files (python3 on PATH; the
// check of those files is skipped with a note where it is not). The limits keep files readable in one sitting; a
// file that has a reason to be longer is listed in ALLOWED with that reason.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const MAX_FILE_LINES = 400;
export const MAX_FUNCTION_LINES = 80;
const FOLDERS = ['src', 'scripts', 'jobs'];
const CODE = /\.(ts|js|mjs|cjs|py)$/;
/** path -> why it may exceed the limits (generated files only; hand-written code is split instead). */
const ALLOWED = {};

/** Tracked files (so build output and generated clients never count); a plain walk outside a git checkout. */
function files() {
  const git = spawnSync('git', ['ls-files', '-z', ...FOLDERS], { cwd: ROOT, encoding: 'utf8' });
  if (git.status === 0) return git.stdout.split('\0').filter((f) => CODE.test(f) && fs.existsSync(path.join(ROOT, f)));
  const out = [];
  const walk = (dir) => {
    for (const e of fs.readdirSync(path.join(ROOT, dir), { withFileTypes: true })) {
      const rel = path.join(dir, e.name);
      if (e.isDirectory() && !['node_modules', 'generated', '__pycache__'].includes(e.name)) walk(rel);
      else if (e.isFile() && CODE.test(e.name)) out.push(rel);
    }
  };
  for (const f of FOLDERS) if (fs.existsSync(path.join(ROOT, f))) walk(f);
  return out;
}

const lineCount = (text) => text.split('\n').length - (text.endsWith('\n') ? 1 : 0);

/** Every function-like node of a script: [name, first line, line count]. */
function scriptFunctions(file, text) {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true, file.endsWith('.ts') ? ts.ScriptKind.TS : ts.ScriptKind.JS);
  const found = [];
  const visit = (node) => {
    if (ts.isFunctionLike(node) && 'body' in node && node.body) {
      const start = source.getLineAndCharacterOfPosition(node.getStart(source)).line + 1;
      const end = source.getLineAndCharacterOfPosition(node.getEnd()).line + 1;
      found.push([functionName(node), start, end - start + 1]);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

function functionName(node) {
  if (node.name && ts.isIdentifier(node.name)) return node.name.text;
  if (ts.isConstructorDeclaration(node)) return 'constructor';
  const parent = node.parent;
  if (parent && (ts.isVariableDeclaration(parent) || ts.isPropertyAssignment(parent) || ts.isPropertyDeclaration(parent)) && ts.isIdentifier(parent.name)) return parent.name.text;
  return '(anonymous)';
}

const PY_FUNCTIONS = `
import ast, json, sys
out = {}
for f in sys.argv[1:]:
    tree = ast.parse(open(f, encoding='utf-8').read(), f)
    out[f] = [[n.name, n.lineno, n.end_lineno - n.lineno + 1] for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
print(json.dumps(out))
`;

/** Python functions of all `.py` files in one python3 run; null when python3 is not there. */
function pythonFunctions(pyFiles) {
  if (!pyFiles.length) return {};
  const py = spawnSync('python3', ['-c', PY_FUNCTIONS, ...pyFiles], { cwd: ROOT, encoding: 'utf8' });
  if (py.error) return null;
  if (py.status !== 0) throw new Error(`python3 could not parse the jobs' Python files:\n${py.stderr}`);
  return JSON.parse(py.stdout);
}

export function findOffenders() {
  const all = files();
  const python = pythonFunctions(all.filter((f) => f.endsWith('.py')));
  const offenders = [];
  const notes = python === null ? ['python3 not found: the functions of .py files were not measured'] : [];
  for (const file of all) {
    if (ALLOWED[file]) continue;
    const text = fs.readFileSync(path.join(ROOT, file), 'utf8');
    const lines = lineCount(text);
    if (lines > MAX_FILE_LINES) offenders.push(`${file}: ${lines} lines (limit ${MAX_FILE_LINES})`);
    const fns = file.endsWith('.py') ? (python?.[file] ?? []) : scriptFunctions(file, text);
    for (const [name, start, count] of fns) {
      if (count > MAX_FUNCTION_LINES) offenders.push(`${file}:${start}: function ${name} is ${count} lines (limit ${MAX_FUNCTION_LINES})`);
    }
  }
  return { offenders, notes, checked: all.length };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { offenders, notes, checked } = findOffenders();
  for (const n of notes) console.error(`[sizes] note: ${n}`);
  if (offenders.length) {
    console.error(`[sizes] ${offenders.length} over the limits (split them, or list a generated file in ALLOWED with its reason):`);
    for (const o of offenders) console.error(`  ${o}`);
    process.exit(1);
  }
  console.error(`[sizes] ${checked} files in ${FOLDERS.join(', ')}: none over ${MAX_FILE_LINES} lines, no function over ${MAX_FUNCTION_LINES}`);
}
