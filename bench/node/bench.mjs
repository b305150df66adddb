// Benchmarks libsignal-client's triple ratchet (PQXDH + Double Ratchet +
// SPQR) through Node, measured like hush's session benchmarks: a 100-byte
// message encrypted and decrypted, with each session record serialized to
// bytes and parsed back between messages, as a persistent store does.
// Prints Go benchmark lines, so benchstat can read them beside hush's:
// the names of hush's session benchmarks (SteadyState/TripleRatchet, ...),
// the -N suffix of Go's GOMAXPROCS, and "impl: libsignal" as the file's
// configuration, for benchstat -col impl (see README.md):
//   node bench.mjs [count]
import { availableParallelism } from 'node:os';
import * as S from '@signalapp/libsignal-client';

class Identity extends S.IdentityKeyStore {
  constructor() { super(); this.kp = S.IdentityKeyPair.generate(); this.reg = 1; this.known = new Map(); }
  async getIdentityKey() { return this.kp.privateKey; }
  async getIdentityKeyPair() { return this.kp; }
  async getLocalRegistrationId() { return this.reg; }
  async saveIdentity(a, k) { this.known.set(a.toString(), k.serialize()); return S.IdentityChange.NewOrUnchanged; }
  async isTrustedIdentity() { return true; }
  async getIdentity(a) { const v = this.known.get(a.toString()); return v ? S.PublicKey.deserialize(v) : null; }
}
class Sessions extends S.SessionStore {
  constructor() { super(); this.m = new Map(); }
  async saveSession(a, r) { this.m.set(a.toString(), r.serialize()); }
  async getSession(a) { const v = this.m.get(a.toString()); return v ? S.SessionRecord.deserialize(v) : null; }
  async getExistingSessions(as) { return (await Promise.all(as.map((a) => this.getSession(a)))).filter(Boolean); }
}
class PreKeys extends S.PreKeyStore {
  constructor() { super(); this.m = new Map(); }
  async savePreKey(id, r) { this.m.set(id, r.serialize()); }
  async getPreKey(id) { return S.PreKeyRecord.deserialize(this.m.get(id)); }
  async removePreKey(id) { this.m.delete(id); }
}
class SignedPreKeys extends S.SignedPreKeyStore {
  constructor() { super(); this.m = new Map(); }
  async saveSignedPreKey(id, r) { this.m.set(id, r.serialize()); }
  async getSignedPreKey(id) { return S.SignedPreKeyRecord.deserialize(this.m.get(id)); }
}
class KyberPreKeys extends S.KyberPreKeyStore {
  constructor() { super(); this.m = new Map(); }
  async saveKyberPreKey(id, r) { this.m.set(id, r.serialize()); }
  async getKyberPreKey(id) { return S.KyberPreKeyRecord.deserialize(this.m.get(id)); }
  async markKyberPreKeyUsed() {}
}

function party(name) {
  const p = { addr: S.ProtocolAddress.new(name, 1), identity: new Identity(), sessions: new Sessions(),
    preKeys: new PreKeys(), signed: new SignedPreKeys(), kyber: new KyberPreKeys() };
  return p;
}

async function bundle(p) {
  const ik = p.identity.kp;
  const spkPriv = S.PrivateKey.generate();
  const spk = S.SignedPreKeyRecord.new(1, Date.now(), spkPriv.getPublicKey(), spkPriv, ik.privateKey.sign(spkPriv.getPublicKey().serialize()));
  const pkPriv = S.PrivateKey.generate();
  const pk = S.PreKeyRecord.new(1, pkPriv.getPublicKey(), pkPriv);
  const kem = S.KEMKeyPair.generate();
  const kpk = S.KyberPreKeyRecord.new(1, Date.now(), kem, ik.privateKey.sign(kem.getPublicKey().serialize()));
  await p.signed.saveSignedPreKey(1, spk);
  await p.preKeys.savePreKey(1, pk);
  await p.kyber.saveKyberPreKey(1, kpk);
  return S.PreKeyBundle.new(p.identity.reg, 1, 1, pkPriv.getPublicKey(), 1, spkPriv.getPublicKey(), spk.signature(),
    ik.publicKey, 1, kem.getPublicKey(), kpk.signature());
}

const msg = new Uint8Array(100);

async function send(from, to) {
  const ct = await S.signalEncrypt(msg, to.addr, from.addr, from.sessions, from.identity);
  const bytes = ct.serialize();
  let pt;
  if (ct.type() === S.CiphertextMessageType.PreKey) {
    pt = await S.signalDecryptPreKey(S.PreKeySignalMessage.deserialize(bytes), from.addr, to.addr, to.sessions,
      to.identity, to.preKeys, to.signed, to.kyber);
  } else {
    pt = await S.signalDecrypt(S.SignalMessage.deserialize(bytes), from.addr, to.addr, to.sessions, to.identity);
  }
  if (pt.length !== msg.length) throw new Error('wrong plaintext');
}

async function established() {
  const a = party('alice'), b = party('bob');
  await S.processPreKeyBundle(await bundle(b), b.addr, a.addr, a.sessions, a.identity);
  await send(a, b);
  await send(b, a);
  return [a, b];
}

async function timeIt(name, n, fn) {
  // warm up, then measure
  for (let i = 0; i < Math.min(200, n); i++) await fn(i);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) await fn(i);
  const ns = Number(process.hrtime.bigint() - t0) / n;
  console.log(`Benchmark${name}-${procs} \t${n}\t${ns.toFixed(0)} ns/op`);
}

const count = Number(process.argv[2] ?? 5);
const procs = availableParallelism(); // what Go's GOMAXPROCS is by default
const goarch = { x64: 'amd64', ia32: '386' }[process.arch] ?? process.arch; // Go's names
console.log(`goos: ${process.platform}\ngoarch: ${goarch}\npkg: libsignal-node\nimpl: libsignal`);
for (let c = 0; c < count; c++) {
  {
    const [a, b] = await established();
    await timeIt('SteadyState/TripleRatchet', 3000, () => send(a, b));
  }
  {
    const [a, b] = await established();
    await timeIt('Alternating/TripleRatchet', 1000, (i) => (i % 2 === 0 ? send(a, b) : send(b, a)));
  }
  await timeIt('Setup/PQXDH+SPQR', 200, async () => {
    const a = party('alice'), b = party('bob');
    const bb = await bundle(b);
    await S.processPreKeyBundle(bb, b.addr, a.addr, a.sessions, a.identity);
    await send(a, b);
  });
}
