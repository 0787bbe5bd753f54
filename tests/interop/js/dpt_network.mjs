// A loopback network of @ethereumjs/devp2p nodes (discv4 DPT + RLPx with eth/68) in one Node.js process.
//
//   node dpt_network.mjs --nodes N --base-port P [--fanout K] [--max-seconds S] [--network mainnet]
//                        [--seed TEXT] [--ping-back 1] [--trace 0]
//                        [--stale K --stale-pool M] [--latency-ms LO-HI] [--loss P] [--settle-seconds S]
//
// Node i listens on 127.0.0.1, UDP (discv4) and TCP (RLPx) port P+i, with its own key and a distinct client
// id. Tables are seeded as a tree: node k knows only nodes K*k+1 .. K*k+K, so the whole network is found
// only by walking from node 0 (the bootnode). The DPTs run with neighbour discovery and DNS discovery off,
// which also makes their periodic refresh a no-op: no table changes while a test runs. A stock DPT pings
// back, ~100 ms later, the `from` endpoint of a PING from a node it does not know, and then adds that node
// to its table; here the ping-back is kept (it is what a crawler meets on the wire) and the table add is
// not (so the topology stays as built). --ping-back 0 turns the ping-back off.
//
// Dirt, as a crawler meets it on the real network (all off by default):
//   --stale K        every node's table also holds K stale entries, drawn from a pool of --stale-pool M
//                    identities (real keys) on ports P+N .. P+N+M-1 of 127.0.0.1, where nothing listens: they
//                    appear in answers and never answer a PING.
//   --latency-ms LO-HI  every node delays each datagram it receives by its own delay, drawn once per node
//                    uniformly in LO..HI ms, plus up to 10% jitter per datagram (the RTT a crawler sees).
//   --loss P         every datagram a node receives, and every one it sends, is dropped with probability P.
//   --settle-seconds S  after the tree is seeded, run the library's own discovery (each node bootstraps from
//                    its parent; neighbour lookups and table refresh on, refresh every SETTLE_REFRESH_MS) for
//                    S s, then turn it off and report ready: tables look like those of a network that has run
//                    a while (many entries, both ways), not like a young tree. "children" still names the
//                    seeded tree; "table" in the manifest lists what each table holds when ready.
//
// stdout, one JSON object per line:
//   {"event":"ready","nodes":[{"index","enode","node_id","pubkey","client_id","udp","tcp","children"}],
//    "status":{...},"fanout":K}                           once every socket is listening
//   {"event":"stats","nodes":[{"index","pings_in","pingers","findnodes_in","neighbours_sent",
//    "ping_backs","connections","hellos","status_sent","status_received","disconnects","settle_errors"}]}
//   {"event":"pong","node":i,"ok":true|false,"to":enode,"from":pubkey}  answer to a "ping" command
//   {"event":"neighbours","node":i,"from":pubkey,"packets":n,"nodes":[{"pubkey","address","udp","tcp"}]}
// Peers are named by their 64-byte public key in hex, as the library (and an enode URL) does; only the
// manifest's node_id is keccak256 of it.
//   {"event":"error",...}  {"event":"exit",...}
// With --trace 1 also per packet and per connection: ping_in, findnode_in, peer_added, status_received.
// The default prints nothing per packet: stdout is a pipe, and a reader that stops reading would block
// this whole process once the pipe fills.
//
// stdin, one JSON command per line (stdin closing ends the process):
//   {"cmd":"stats"}
//   {"cmd":"ping","node":i,"enode":"enode://..."}          node i pings that node (its table stays as is)
//   {"cmd":"findnode","node":i,"enode":"enode://...","target":"<128 hex>","wait_ms":800}
//        node i sends FINDNODE and reports every NEIGHBORS that node sent back within wait_ms
import * as os from 'os'

import { DPT, ETH, RLPx, decode as decodeDiscovery, pk2id } from '@ethereumjs/devp2p'
import { bytesToHex, bytesToUnprefixedHex, hexToBytes, utf8ToBytes } from '@ethereumjs/util'
import { keccak256 } from 'ethereum-cryptography/keccak.js'
import { secp256k1 } from 'ethereum-cryptography/secp256k1.js'

import {
  LOOPBACK,
  chainSettings,
  emit,
  exitWhenToldOrAfter,
  fail,
  loadPrivateKey,
  parseArgs,
  pubkeyHex,
  statusJson,
} from './harness.mjs'

const PING_TYPE = 0x01 // discv4 packet types, byte 97 of a datagram (after hash and signature)
const FINDNODE_TYPE = 0x03
const NEIGHBOURS_TYPE = 0x04
const HEADER_SIZE = 98 // bytes: hash (32) + signature (65) + type (1)
const MAX_NODES = 1000 // one process, one port each: far above what a test needs
const MAX_FANOUT = 16 // a bucket's size: more children than one NEIGHBORS answer carries would hide some
const MAX_PINGERS_LISTED = 64 // distinct pinger public keys kept per node for the stats event
const MAX_RLPX_PEERS = 16 // per node: a crawler dials each once; tests may dial a few more
const DEFAULT_FINDNODE_WAIT_MS = 800 // ms: the answer comes in ~ms on loopback; a second packet soon after
const MAX_FINDNODE_WAIT_MS = 5000
const MAX_STALE_POOL = 1000 // stale identities: one key each, derived at start
const JITTER_SHARE = 0.1 // per-datagram jitter, as a share of the node's delay
// ms: the library refreshes a tenth of its table per tick, tick = interval / 10; 60 s by default, far too slow
// for a test that settles for seconds.
const SETTLE_REFRESH_MS = 1000
const SETTLE_TAIL_MS = 5000 // ms after settling during which the library's own errors (late ping timeouts) are only counted

const opts = parseArgs(process.argv.slice(2), {
  nodes: '',
  'base-port': '',
  fanout: '4',
  'max-seconds': '60',
  network: 'mainnet',
  seed: '',
  'ping-back': '1',
  trace: '0',
  stale: '0',
  'stale-pool': '0',
  'latency-ms': '0-0',
  loss: '0',
  'settle-seconds': '0',
})
const count = Number(opts.nodes)
const basePort = Number(opts['base-port'])
const fanout = Number(opts.fanout)
if (!Number.isInteger(count) || count < 1 || count > MAX_NODES) fail(`--nodes must be 1..${MAX_NODES}`)
if (!Number.isInteger(basePort) || basePort < 1024 || basePort + count > 65536)
  fail('--base-port must leave room for --nodes ports below 65536')
if (!Number.isInteger(fanout) || fanout < 1 || fanout > MAX_FANOUT) fail(`--fanout must be 1..${MAX_FANOUT}`)
const pingBack = opts['ping-back'] !== '0'
const trace = opts.trace !== '0'
const staleCount = Number(opts.stale)
const stalePool = Number(opts['stale-pool'])
if (!Number.isInteger(stalePool) || stalePool < 0 || stalePool > MAX_STALE_POOL || basePort + count + stalePool > 65536)
  fail(`--stale-pool must be 0..${MAX_STALE_POOL} and leave room for its ports`)
if (!Number.isInteger(staleCount) || staleCount < 0 || staleCount > stalePool)
  fail('--stale must be 0..--stale-pool')
const latencyMatch = /^(\d+)-(\d+)$/.exec(opts['latency-ms'])
if (latencyMatch === null || Number(latencyMatch[1]) > Number(latencyMatch[2])) fail('--latency-ms must be LO-HI, LO <= HI')
const [latencyLow, latencyHigh] = [Number(latencyMatch[1]), Number(latencyMatch[2])]
const loss = Number(opts.loss)
if (!(loss >= 0 && loss < 1)) fail('--loss must be in [0, 1)')
const settleSeconds = Number(opts['settle-seconds'])
if (!(settleSeconds >= 0)) fail('--settle-seconds must be >= 0')

// Deterministic dirt for a given --seed (mulberry32): which stale entries, which delays, which losses.
let rngState = [...(opts.seed || 'dirt')].reduce((h, c) => Math.imul(h ^ c.charCodeAt(0), 2654435761) >>> 0, 1)
function random() {
  rngState = (rngState + 0x6d2b79f5) >>> 0
  let t = rngState
  t = Math.imul(t ^ (t >>> 15), t | 1)
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

const { common, status } = chainSettings({
  chain: opts.network,
  hardfork: '',
  'genesis-hash': '',
  td: '17179869184',
  'best-hash': '',
})
const runtime = `${os.platform()}-${os.arch()}/nodejs${process.versions.node.split('.')[0]}`

/** The Status every node sends, in the JSON shape of harness.statusJson, computed as ETH.sendStatus does. */
function expectedStatus() {
  const hardfork = common.hardfork()
  const next = common.nextHardforkBlockOrTimestamp(hardfork) ?? 0n
  return {
    version: 68,
    network_id: Number(common.chainId()),
    td: BigInt(bytesToHex(status.td)).toString(),
    best_hash: bytesToHex(status.bestHash),
    genesis_hash: bytesToHex(status.genesisHash),
    fork_id: { hash: common.forkHash(hardfork), next: Number(next) },
  }
}

function privateKeyFor(index) {
  if (opts.seed === '') return loadPrivateKey('')
  // Deterministic keys for a reproducible network (any 32 bytes below the curve order will do).
  return keccak256(utf8ToBytes(`${opts.seed}:${index}`))
}

function newCounters() {
  return {
    pings_in: 0,
    pingers: new Set(),
    findnodes_in: 0,
    neighbours_sent: 0,
    ping_backs: 0,
    connections: 0,
    hellos: 0,
    status_sent: 0,
    status_received: 0,
    disconnects: 0,
    settle_errors: 0,
  }
}

function parseEnode(url) {
  const match = /^enode:\/\/([0-9a-f]{128})@127\.0\.0\.1:(\d+)(?:\?discport=(\d+))?$/.exec(url ?? '')
  if (match === null) throw new Error(`expected enode://<128 hex>@127.0.0.1:port, got ${url}`)
  const tcp = Number(match[2])
  const udp = match[3] === undefined ? tcp : Number(match[3])
  const id = hexToBytes(`0x${match[1]}`)
  return { id, address: LOOPBACK, udpPort: udp, tcpPort: tcp }
}

// ------------------------------------------------------------------------------------------------ nodes

const nodes = []
for (let index = 0; index < count; index++) {
  const privateKey = privateKeyFor(index)
  const port = basePort + index
  const pubkey = pubkeyHex(privateKey)
  nodes.push({
    index,
    privateKey,
    port,
    pubkey,
    id: pk2id(secp256k1.getPublicKey(privateKey, false)),
    clientId: `ethereumjs-devnet/v10.0.0-node${index}/${runtime}`,
    delayMs: latencyLow + random() * (latencyHigh - latencyLow),
    counters: newCounters(),
    // Waiters for NEIGHBORS from a given node id (findnode command).
    neighbourWaiters: new Map(),
    dpt: null,
    rlpx: null,
  })
}

// The stale pool: real identities at ports nothing listens on.
const staleEntries = []
for (let j = 0; j < stalePool; j++) {
  const key = keccak256(utf8ToBytes(`${opts.seed || 'dirt'}:stale:${j}`))
  staleEntries.push({ id: pk2id(secp256k1.getPublicKey(key, false)), address: LOOPBACK, udpPort: basePort + count + j, tcpPort: basePort + count + j })
}

function isMember(peer) {
  return peer.address === LOOPBACK && peer.udpPort >= basePort && peer.udpPort < basePort + count + stalePool
}

function observeDiscovery(node) {
  const server = node.dpt._server
  const handle = server._handler
  const deliver = function (msg, rinfo) {
    const type = msg.length >= HEADER_SIZE ? msg[HEADER_SIZE - 1] : -1
    if (type === PING_TYPE) node.counters.pings_in++
    if (type === FINDNODE_TYPE) node.counters.findnodes_in++
    if (type === NEIGHBOURS_TYPE && node.neighbourWaiters.size > 0) collectNeighbours(node, msg)
    return handle.call(server, msg, rinfo)
  }
  server._handler = function (msg, rinfo) {
    if (loss > 0 && random() < loss) return
    if (node.delayMs <= 0) return deliver(msg, rinfo)
    setTimeout(() => deliver(msg, rinfo), node.delayMs * (1 + JITTER_SHARE * random()))
  }
  if (loss > 0) {
    const socket = server._socket
    const sendDatagram = socket.send
    socket.send = function (...args) {
      if (random() < loss) return
      return sendDatagram.apply(socket, args)
    }
  }
  // Outgoing packets carry the recipient's id: who pinged us (our Pong) and what we served (NEIGHBORS).
  const send = server._send
  server._send = function (peer, typename, data) {
    const target = peer.id instanceof Uint8Array ? bytesToUnprefixedHex(peer.id) : null
    if (typename === 'pong' && target !== null) {
      if (node.counters.pingers.size < MAX_PINGERS_LISTED) node.counters.pingers.add(target)
      if (trace) emit('ping_in', { node: node.index, from: target })
    }
    if (typename === 'neighbours') {
      node.counters.neighbours_sent++
      if (trace) emit('findnode_in', { node: node.index, from: target, answered: data.peers.length })
    }
    return send.call(this, peer, typename, data)
  }
  if (pingBack) {
    // The server emits 'peers' with a PING's `from` endpoint 100 ms after a PING from an unknown node
    // (and with the nodes of a NEIGHBORS, which these nodes never ask for unless told to by a command).
    server.events.on('peers', (peers) => {
      if (node.neighbourWaiters.size > 0) return
      for (const peer of peers) {
        // Never among the network's own nodes (or stale ports): once they ping each other (--settle-seconds),
        // two nodes that do not hold each other would ping each other back forever.
        if (isMember(peer)) continue
        node.counters.ping_backs++
        server.ping(peer).catch(() => {})
      }
    })
  }
}

function collectNeighbours(node, msg) {
  let info
  try {
    info = decodeDiscovery(msg, common)
  } catch {
    return // the library's own handler reports it
  }
  const from = bytesToUnprefixedHex(pk2id(info.publicKey))
  const waiter = node.neighbourWaiters.get(from)
  if (waiter === undefined) return
  waiter.packets++
  for (const peer of info.data.peers) {
    waiter.nodes.push({
      pubkey: bytesToUnprefixedHex(peer.id),
      address: peer.endpoint.address,
      udp: peer.endpoint.udpPort,
      tcp: peer.endpoint.tcpPort,
    })
  }
}

function startEth(node, peer) {
  node.counters.hellos++
  const eth = peer.getProtocols().find((p) => p instanceof ETH)
  if (trace) {
    emit('peer_added', { node: node.index, client_id: peer.getHelloMessage().clientId, eth: eth !== undefined })
  }
  if (eth === undefined) return
  eth.events.on('status', () => {
    node.counters.status_received++
    if (trace) emit('status_received', { node: node.index, status: statusJson(eth._peerStatus) })
  })
  try {
    eth.sendStatus(status)
    node.counters.status_sent++
  } catch (err) {
    // The remote Status came first and did not match ours: the library's answer is Disconnect 0x10.
    emit('error', { node: node.index, where: 'sendStatus', message: String(err?.message ?? err) })
    peer.disconnect(0x10)
  }
}

function startNode(node) {
  return new Promise((resolve, reject) => {
    let waiting = 2
    const done = () => --waiting === 0 && resolve()
    node.dpt = new DPT(node.privateKey, {
      endpoint: { address: LOOPBACK, udpPort: node.port, tcpPort: node.port },
      // Loopback only: the DPT would otherwise point Node's resolver at 8.8.8.8.
      dnsAddr: LOOPBACK,
      // Settling runs the library's own discovery; it is turned off again before the network reports ready.
      shouldFindNeighbours: settleSeconds > 0,
      refreshInterval: SETTLE_REFRESH_MS,
      shouldGetDnsPeers: false,
      common,
    })
    node.dpt.events.once('listening', done)
    node.dpt.events.on('error', (err) => {
      const message = String(err?.message ?? err)
      if (waiting > 0) reject(new Error(`udp ${node.port}: ${message}`))
      // While settling over a lossy network, pings time out and peers get banned: the library's normal life.
      else if (settling) node.counters.settle_errors++
      else emit('error', { node: node.index, where: 'dpt', message })
    })
    observeDiscovery(node)
    node.rlpx = new RLPx(node.privateKey, {
      clientId: utf8ToBytes(node.clientId),
      capabilities: [ETH.eth68],
      common,
      maxPeers: MAX_RLPX_PEERS,
      // No DPT here: a listener only, which never dials out of its own accord.
      dpt: null,
      listenPort: node.port,
    })
    node.rlpx.events.once('listening', done)
    node.rlpx.events.on('error', (err) => {
      const message = String(err?.message ?? err)
      if (waiting > 0) reject(new Error(`tcp ${node.port}: ${message}`))
      else emit('error', { node: node.index, where: 'rlpx', message })
    })
    node.rlpx.events.on('peer:added', (peer) => {
      node.counters.connections++
      startEth(node, peer)
    })
    node.rlpx.events.on('peer:removed', () => node.counters.disconnects++)
    // A remote that misbehaves is the library's business; a crawler closing abruptly is normal.
    node.rlpx.events.on('peer:error', () => {})
    node.dpt.bind(node.port, LOOPBACK)
    node.rlpx.listen(node.port, LOOPBACK)
  })
}

function children(index) {
  const out = []
  for (let child = fanout * index + 1; child <= fanout * index + fanout && child < count; child++) out.push(child)
  return out
}

function seedTables() {
  for (const node of nodes) {
    for (const child of children(node.index)) {
      const peer = nodes[child]
      // Straight into the k-bucket: DPT.addPeer would ping first and make the child ping back.
      node.dpt._kbucket.add({ id: peer.id, address: LOOPBACK, udpPort: peer.port, tcpPort: peer.port })
    }
    const have = node.dpt.getPeers().length
    if (have !== children(node.index).length) {
      fail(`node ${node.index}: table holds ${have} nodes, expected ${children(node.index).length}`)
    }
    // Stale entries: a random draw per node from the shared pool, as the same dead records haunt many tables.
    const pool = [...staleEntries]
    for (let j = 0; j < staleCount; j++) {
      const [entry] = pool.splice(Math.floor(random() * pool.length), 1)
      node.dpt._kbucket.add({ ...entry })
    }
  }
}

let settling = false

/** Run the library's discovery for settleSeconds (each node bootstraps from its parent), then stop it. */
async function settle() {
  if (settleSeconds <= 0) return
  settling = true
  for (const node of nodes.slice(1)) {
    const parent = nodes[Math.floor((node.index - 1) / fanout)]
    node.dpt.bootstrap({ address: LOOPBACK, udpPort: parent.port, tcpPort: parent.port }).catch(() => {})
  }
  await new Promise((resolve) => setTimeout(resolve, settleSeconds * 1000))
  // From here on the tables only change through the crawler's own pings being answered.
  for (const node of nodes) {
    node.dpt._shouldFindNeighbours = false
    // The library queues every peer a NEIGHBORS named, to be pinged and added 200 ms apart: thousands after a
    // settle, whose signing would keep this process too busy to answer the crawler in time. Drop them.
    node.dpt.addPeer = async (peer) => peer
  }
  setTimeout(() => (settling = false), SETTLE_TAIL_MS)
}

// ---------------------------------------------------------------------------------------------- commands

function statsEvent() {
  emit('stats', {
    nodes: nodes.map((node) => {
      const { pingers, ...counts } = node.counters
      return { index: node.index, ...counts, pingers: [...pingers] }
    }),
  })
}

function commandNode(cmd) {
  const node = nodes[cmd.node ?? 0]
  if (node === undefined) throw new Error(`no node ${cmd.node}`)
  return node
}

async function runCommand(cmd) {
  switch (cmd.cmd) {
    case 'stats':
      return statsEvent()
    case 'ping': {
      const node = commandNode(cmd)
      const peer = parseEnode(cmd.enode)
      try {
        const answer = await node.dpt._server.ping(peer)
        return emit('pong', { node: node.index, ok: true, to: cmd.enode, from: bytesToUnprefixedHex(answer.id) })
      } catch (err) {
        return emit('pong', { node: node.index, ok: false, to: cmd.enode, message: String(err?.message ?? err) })
      }
    }
    case 'findnode': {
      const node = commandNode(cmd)
      const peer = parseEnode(cmd.enode)
      const target = hexToBytes(`0x${cmd.target}`)
      if (target.length !== 64) throw new Error('target must be 64 bytes of hex')
      const wait = Math.min(Number(cmd.wait_ms ?? DEFAULT_FINDNODE_WAIT_MS), MAX_FINDNODE_WAIT_MS)
      const from = bytesToUnprefixedHex(peer.id)
      if (node.neighbourWaiters.has(from)) throw new Error(`a findnode to ${from} is already waiting`)
      const waiter = { packets: 0, nodes: [] }
      node.neighbourWaiters.set(from, waiter)
      node.dpt._server.findneighbours(peer, target)
      await new Promise((resolve) => setTimeout(resolve, wait))
      node.neighbourWaiters.delete(from)
      return emit('neighbours', { node: node.index, from, packets: waiter.packets, nodes: waiter.nodes })
    }
    default:
      throw new Error(`unknown command ${JSON.stringify(cmd.cmd)}`)
  }
}

function listenForCommands() {
  let buffer = ''
  process.stdin.setEncoding('utf8')
  process.stdin.on('data', (chunk) => {
    buffer += chunk
    let end
    while ((end = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, end).trim()
      buffer = buffer.slice(end + 1)
      if (line === '') continue
      let cmd
      try {
        cmd = JSON.parse(line)
      } catch {
        emit('error', { where: 'command', message: `not JSON: ${line.slice(0, 200)}` })
        continue
      }
      runCommand(cmd).catch((err) =>
        emit('error', { where: 'command', cmd: cmd.cmd, message: String(err?.message ?? err) }),
      )
    }
  })
}

// ------------------------------------------------------------------------------------------------- main

exitWhenToldOrAfter(opts['max-seconds'], () => {
  for (const node of nodes) {
    try {
      node.rlpx?.destroy()
      node.dpt?.destroy()
    } catch {
      // Already closed.
    }
  }
})
listenForCommands()

const started = Date.now()
try {
  await Promise.all(nodes.map(startNode))
} catch (err) {
  fail(`could not listen: ${err.message}`)
}
seedTables()
await settle()
emit('ready', {
  fanout,
  startup_ms: Date.now() - started,
  stale: staleEntries.map((entry) => ({ pubkey: bytesToUnprefixedHex(entry.id), udp: entry.udpPort })),
  status: expectedStatus(),
  nodes: nodes.map((node) => ({
    index: node.index,
    enode: `enode://${node.pubkey}@${LOOPBACK}:${node.port}`,
    pubkey: node.pubkey,
    node_id: bytesToUnprefixedHex(keccak256(hexToBytes(`0x${node.pubkey}`))),
    client_id: node.clientId,
    udp: node.port,
    tcp: node.port,
    children: children(node.index),
    table: node.dpt.getPeers().map((peer) => bytesToUnprefixedHex(peer.id)),
    delay_ms: Math.round(node.delayMs),
  })),
})
