// serve.mjs runs a peer.mjs many times in one Node process, so that tests
// do not pay Node's and libsignal's start-up for every call. Each request is
// one JSON line on stdin: {"args": [...], "stdin": "..."}; each answer one
// JSON line: {"code": N, "stdout": "...", "stderr": "..."}. A call behaves
// as the command line would: the peer module is evaluated afresh with
// process.argv set to the request's arguments, its stdin is the request's
// stdin, and process.exit ends the call with that exit code.
//
//   node serve.mjs /path/to/peer.mjs
import fs from 'node:fs';
import readline from 'node:readline';
import { pathToFileURL } from 'node:url';

const peer = pathToFileURL(process.argv[2]).href;
const realWrite = process.stdout.write.bind(process.stdout);
const realRead = fs.readFileSync;
const realExit = process.exit;

class Exit extends Error {
  constructor(code) { super(`exit ${code}`); this.code = code; }
}

let call = null; // the call in progress: {stdin, out, err, resolve}

process.stdout.write = (s) => { if (call) { call.out += s; call.finish(0); } return true; };
process.stderr.write = (s) => { if (call && !call.done) call.err += s; return true; };
fs.readFileSync = (f, ...rest) => (f === 0 && call ? call.stdin : realRead(f, ...rest));
process.exit = (code) => { if (call) call.finish(code ?? 0); throw new Exit(code); };
process.on('unhandledRejection', (e) => { if (!(e instanceof Exit)) { if (call) { call.err += String(e && e.stack || e); call.finish(1); } } });

let n = 0;
const rl = readline.createInterface({ input: process.stdin });
for await (const line of rl) {
  const req = JSON.parse(line);
  const result = await new Promise((resolve) => {
    call = { stdin: req.stdin ?? '', out: '', err: '', done: false };
    call.finish = (code) => {
      if (call.done) return;
      call.done = true;
      // Let the rest of the peer's microtasks settle before answering.
      setImmediate(() => resolve({ code, stdout: call.out, stderr: call.err }));
    };
    process.argv = [process.argv[0], peer, ...req.args];
    import(`${peer}?call=${++n}`).catch((e) => { if (!(e instanceof Exit)) { call.err += String(e); call.finish(1); } });
  });
  call = null;
  realWrite(JSON.stringify(result) + '\n');
}
realExit(0);
