// RLPx handshakes per second of @ethereumjs/devp2p, both sides in this process, for bench/rlpx_vs_ethereumjs.py.
//
//   node bench/js/rlpx_handshake_bench.mjs [--seconds 2] [--keys 16] [--modules tests/interop/node_modules]
//
// One handshake = what ethereumjs's Peer does for one connection on each side: an ECIES object per side (the
// constructor draws the nonce and the ephemeral key), auth created and parsed, ack created and parsed, frame
// secrets set up on both sides. Before timing, one frame each way proves both sides derived the same secrets.
// Prints one JSON line: {"eip8": {...}, "legacy": {...}, "node": version, "devp2p": version}.
import { readFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

const HERE = dirname(fileURLToPath(import.meta.url))

function parseArgs(argv) {
  // The installed packages live with the interop tests; no second package.json for the benchmarks.
  const out = { seconds: '2', keys: '16', modules: join(HERE, '..', '..', 'tests', 'interop', 'node_modules') }
  for (let i = 0; i < argv.length; i += 2) {
    const name = argv[i].replace(/^--/, '')
    if (!(name in out) || i + 1 >= argv.length) {
      process.stderr.write(`usage: rlpx_handshake_bench.mjs [--seconds S] [--keys N] [--modules DIR]\n`)
      process.exit(2)
    }
    out[name] = argv[i + 1]
  }
  return out
}

const args = parseArgs(process.argv.slice(2))
const modules = resolve(args.modules)
const load = (path) => import(pathToFileURL(join(modules, path)).href)
const devp2p = await load('@ethereumjs/devp2p/dist/esm/index.js')
const { secp256k1 } = await load('ethereum-cryptography/secp256k1.js')
const { ECIES, pk2id } = devp2p

// bytes: 65 (ephemeral key) + 16 (IV) + 194 (auth body) + 32 (HMAC tag).
const LEGACY_AUTH_SIZE = 307

function sameBytes(a, b) {
  return a.length === b.length && a.every((value, i) => value === b[i])
}

function newPair(keys, eip8) {
  const initiator = new ECIES(keys.a, keys.aId, keys.bId)
  const recipient = new ECIES(keys.b, keys.bId, null)
  if (eip8) {
    // The Peer sets these when it sees a non-0x04 first byte; the message classes leave it to the caller.
    recipient._gotEIP8Auth = true
    initiator._gotEIP8Ack = true
    recipient.parseAuthEIP8(initiator.createAuthEIP8())
    initiator.parseAckEIP8(recipient.createAckEIP8())
  } else {
    const auth = initiator.createAuthNonEIP8()
    // createAuthNonEIP8 writes r and s without left padding, so about 1 auth in 128 is short and the recipient
    // refuses it; a Peer would drop that connection. Counted as a failure, its time stays in the measurement.
    if (auth.length !== LEGACY_AUTH_SIZE) return null
    recipient.parseAuthPlain(auth)
    initiator.parseAckPlain(recipient.createAckOld())
  }
  return [initiator, recipient]
}

function checkFrames(initiator, recipient) {
  for (const [from, to] of [
    [initiator, recipient],
    [recipient, initiator],
  ]) {
    const payload = Uint8Array.from({ length: 40 }, (_, i) => i)
    const header = from.createBlockHeader(payload.length)
    const body = from.createBody(payload)
    if (to.parseHeader(header) !== payload.length) throw new Error('frame header did not decode')
    if (!sameBytes(to.parseBody(body), payload)) throw new Error('frame body did not decode')
  }
}

function measure(keySets, eip8, seconds) {
  let pair = null
  while (pair === null) pair = newPair(keySets[0], eip8)
  checkFrames(...pair)
  for (let i = 0; i < 50; i++) newPair(keySets[i % keySets.length], eip8) // JIT warm-up
  const budget = BigInt(Math.round(seconds * 1e9))
  let count = 0
  let failed = 0
  const start = process.hrtime.bigint()
  let elapsed = 0n
  while (elapsed < budget) {
    for (let i = 0; i < 20; i++) {
      if (newPair(keySets[(count + failed) % keySets.length], eip8) === null) failed++
      else count++
    }
    elapsed = process.hrtime.bigint() - start
  }
  const secondsTaken = Number(elapsed) / 1e9
  return { handshakes: count, failed, seconds: secondsTaken, per_second: count / secondsTaken }
}

const keySets = Array.from({ length: Number(args.keys) }, () => {
  const a = secp256k1.utils.randomPrivateKey()
  const b = secp256k1.utils.randomPrivateKey()
  return {
    a,
    b,
    aId: pk2id(secp256k1.getPublicKey(a, false)),
    bId: pk2id(secp256k1.getPublicKey(b, false)),
  }
})
const seconds = Number(args.seconds)
const version = JSON.parse(readFileSync(join(modules, '@ethereumjs', 'devp2p', 'package.json'), 'utf8')).version
const result = {
  node: process.version,
  devp2p: version,
  eip8: measure(keySets, true, seconds),
  legacy: measure(keySets, false, seconds),
}
process.stdout.write(JSON.stringify(result) + '\n')
