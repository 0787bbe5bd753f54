// Shared plumbing for the ethereumjs interop scripts: argument parsing, one-JSON-line-per-event output,
// observation hooks on @ethereumjs/devp2p's Peer, and orderly shutdown.
//
// Every line on stdout is one JSON object with an "event" field; the Python tests read nothing else.
// Diagnostics go to stderr.
import { Common, Holesky, Mainnet, Sepolia } from '@ethereumjs/common'
import { ETH, Peer } from '@ethereumjs/devp2p'
import { RLP } from '@ethereumjs/rlp'
import {
  bigIntToBytes,
  bytesToBigInt,
  bytesToHex,
  bytesToInt,
  bytesToUnprefixedHex,
  hexToBytes,
  intToBytes,
} from '@ethereumjs/util'
import { secp256k1 } from 'ethereum-cryptography/secp256k1.js'

// Genesis block hashes: @ethereumjs/common knows a chain's genesis header fields but not its hash.
const GENESIS_HASHES = {
  mainnet: '0xd4e56740f876aef8c010b86a40d5f56745a118d0906a34e69aec8f0db1cb8fa3',
  sepolia: '0x25a5cc106eea7138acab33231d7160d69cb777ee0c2c553fcddf5138993e6dd9',
  holesky: '0xb5f7f912443c940f21fd611f12828d75b534364ed9e95ca4e307729a4661bde4',
}
const CHAINS = { mainnet: Mainnet, sepolia: Sepolia, holesky: Holesky }
// Versions this library implements (ETH.eth62..ETH.eth68); a capability is shared only on an exact match.
const ETH_VERSIONS = { 62: ETH.eth62, 63: ETH.eth63, 64: ETH.eth64, 65: ETH.eth65, 66: ETH.eth66, 67: ETH.eth67, 68: ETH.eth68 }
// ms: time for a queued Disconnect frame to reach the socket before we exit.
const EXIT_FLUSH_MS = 200
const LOOPBACK = '127.0.0.1'

export const DEFAULTS = {
  'private-key': '',
  'client-id': 'ethereumjs-interop/v10.0.0',
  caps: 'eth/68',
  chain: 'mainnet',
  hardfork: '',
  'genesis-hash': '',
  td: '17179869184',
  'best-hash': '',
  'max-seconds': '30',
}

export function emit(event, fields = {}) {
  process.stdout.write(JSON.stringify({ event, ...fields }) + '\n')
}

export function fail(message) {
  emit('error', { message })
  process.exit(2)
}

/** `--name value` pairs into an object; unknown names are refused so a typo cannot pass silently. */
export function parseArgs(argv, defaults) {
  const out = { ...defaults }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    if (!arg.startsWith('--')) fail(`unexpected argument ${arg}`)
    const name = arg.slice(2)
    if (!(name in defaults)) fail(`unknown option --${name}`)
    if (i + 1 >= argv.length) fail(`option --${name} needs a value`)
    out[name] = argv[++i]
  }
  return out
}

export function loadPrivateKey(hex) {
  const key = hex === '' ? secp256k1.utils.randomPrivateKey() : hexToBytes(hex.startsWith('0x') ? hex : `0x${hex}`)
  if (key.length !== 32) fail('--private-key must be 32 bytes of hex')
  return key
}

/** Raw 64-byte public key (x || y) as unprefixed hex, the form used in enode URLs. */
export function pubkeyHex(privateKey) {
  return bytesToUnprefixedHex(secp256k1.getPublicKey(privateKey, false).subarray(1))
}

export function parseCaps(spec) {
  return spec.split(',').map((item) => {
    const [name, version] = item.trim().split('/')
    const cap = name === 'eth' ? ETH_VERSIONS[Number(version)] : undefined
    if (cap === undefined) fail(`unsupported capability ${item}: this library has eth/62..eth/68 only`)
    return cap
  })
}

/** The chain settings (Common) and the Status fields this side sends. */
export function chainSettings(opts) {
  const chain = CHAINS[opts.chain]
  if (chain === undefined) fail(`unknown --chain ${opts.chain}`)
  const common = new Common(opts.hardfork === '' ? { chain } : { chain, hardfork: opts.hardfork })
  const genesisHash = hexToBytes(opts['genesis-hash'] === '' ? GENESIS_HASHES[opts.chain] : opts['genesis-hash'])
  const bestHash = opts['best-hash'] === '' ? genesisHash : hexToBytes(opts['best-hash'])
  return { common, status: { td: bigIntToBytes(BigInt(opts.td)), bestHash, genesisHash } }
}

function uint(bytes) {
  const value = bytesToBigInt(bytes)
  return value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value.toString()
}

/** A raw eth Status list [version, networkid, td, blockhash, genesis, forkid] as plain JSON. */
export function statusJson(raw) {
  const out = {
    version: uint(raw[0]),
    network_id: uint(raw[1]),
    td: bytesToBigInt(raw[2]).toString(),
    best_hash: bytesToHex(raw[3]),
    genesis_hash: bytesToHex(raw[4]),
  }
  if (raw.length > 5 && Array.isArray(raw[5])) {
    out.fork_id = { hash: bytesToHex(raw[5][0]), next: uint(raw[5][1]) }
  }
  return out
}

/**
 * Reports what the library itself does with a peer, including what its public events leave out:
 * the remote Hello (also when it is then refused as useless), Disconnects in both directions, and Pings.
 * Patched once per process on the prototype; the original methods still run unchanged.
 */
export function observePeers() {
  const proto = Peer.prototype
  const handleHello = proto._handleHello
  proto._handleHello = function (payload) {
    emit('hello', {
      protocol_version: bytesToInt(payload[0]),
      client_id: new TextDecoder().decode(payload[1]),
      caps: payload[2].map((c) => `${new TextDecoder().decode(c[0])}/${bytesToInt(c[1])}`),
      listen_port: bytesToInt(payload[3]),
      node_id: bytesToUnprefixedHex(payload[4]),
    })
    return handleHello.call(this, payload)
  }
  const sendDisconnect = proto._sendDisconnect
  proto._sendDisconnect = function (reason) {
    emit('disconnect', { reason, by: 'local' })
    return sendDisconnect.call(this, reason)
  }
  const handleDisconnect = proto._handleDisconnect
  proto._handleDisconnect = function (payload) {
    const result = handleDisconnect.call(this, payload)
    emit('disconnect', { reason: this._disconnectReason, by: 'remote' })
    return result
  }
  const handlePing = proto._handlePing
  proto._handlePing = function () {
    emit('ping')
    return handlePing.call(this)
  }
}

/** Wires a connected peer's eth protocol: sends our Status at once (the library's usual flow) and reports. */
export function startEth(peer, status) {
  const hello = peer.getHelloMessage()
  emit('peer_added', {
    client_id: hello.clientId,
    caps: hello.capabilities.map((c) => `${c.name}/${c.version}`),
    node_id: bytesToUnprefixedHex(peer.getId()),
  })
  const eth = peer.getProtocols().find((p) => p instanceof ETH)
  if (eth === undefined) return null
  eth.events.on('status', () => emit('status', { status: statusJson(eth._peerStatus) }))
  // The library also emits 'message' for the Status it has just validated; that one is reported above.
  eth.events.on('message', (code) => code !== 0 && emit('eth_message', { code }))
  try {
    eth.sendStatus(status)
    emit('status_sent', { status: statusJson(eth._status) })
  } catch (err) {
    // sendStatus validates the remote Status when that came first; the library then disconnects 0x10.
    emit('error', { message: String(err?.message ?? err), where: 'sendStatus' })
    peer.disconnect(0x10)
  }
  return eth
}

export function reportLibraryErrors(rlpx) {
  rlpx.events.on('error', (err) => emit('error', { message: String(err?.message ?? err), where: 'rlpx' }))
  rlpx.events.on('peer:error', (_peer, err) =>
    emit('error', { message: String(err?.message ?? err), where: 'peer' }),
  )
  rlpx.events.on('peer:removed', (_peer, reason, disconnectWe) =>
    emit('peer_removed', { reason: reason ?? null, by: disconnectWe === true ? 'local' : 'remote' }),
  )
}

/** Exit on SIGTERM/SIGINT, on stdin closing (the test process went away) and after maxSeconds. */
export function exitWhenToldOrAfter(maxSeconds, cleanup) {
  let exiting = false
  const stop = (why) => {
    if (exiting) return
    exiting = true
    emit('exit', { why })
    try {
      cleanup()
    } catch (err) {
      process.stderr.write(`cleanup: ${err}\n`)
    }
    setTimeout(() => process.exit(0), EXIT_FLUSH_MS)
  }
  process.on('SIGTERM', () => stop('sigterm'))
  process.on('SIGINT', () => stop('sigint'))
  process.stdin.on('end', () => stop('stdin-closed'))
  process.stdin.on('error', () => stop('stdin-closed'))
  process.stdin.resume()
  setTimeout(() => stop('max-seconds'), Number(maxSeconds) * 1000)
  return stop
}

export { LOOPBACK, RLP, intToBytes }
