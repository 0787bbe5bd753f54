// @chainsafe/discv5 nodes on 127.0.0.1 for the discovery v5 interop tests, in one Node.js process.
//
// Set-up: @chainsafe/discv5 11.0.0 with @chainsafe/enr 5.0.0, both pinned in ../package.json. That pair is
// what 11.0.0 itself asks for; 12.0.2 wants @chainsafe/enr ^6, which the registry here does not serve, and
// forcing enr 5.0.0 under it with an npm override makes it drop a PING whose enr-seq is 0. The quirk of
// 11.0.0 (see fixtures/INTEROP.md): a request id with leading zero bytes comes back stripped, so the tests
// use request ids whose first byte is not zero.
//
//   node discv5_network.mjs --mode network --nodes N [--base-port 0] [--fanout 2] [--duration 60] [--trace 0]
//   node discv5_network.mjs --mode client --target enr:... [--requests '[[0],[256]]'] [--ping 1]
//                           [--port 0] [--duration 20]
//
// network: node i binds UDP 127.0.0.1:(base+i), or an ephemeral port when --base-port is 0, with a fresh
// secp256k1 key and an ENR holding ip=127.0.0.1 and udp=<its real port> (seq >= 1). Tables are seeded as a
// tree: node i knows only its children fanout*i+1 .. fanout*i+fanout, so only a walk from node 0 finds
// every node. Version 11 starts no lookup, bootstrap or refresh of its own (a node contacts others only
// to answer, or to PING a peer 300 s after a session, past any test), and its ENR self-update from PONG
// address votes is switched off, so records and tables stay as built except that a node which completes
// a handshake with a peer adds that peer (the test's crawler) to its table. The library's 20 KiB socket
// receive buffer is left as it is (a crawler must pace itself against it).
//   stdout: {"event":"node","index","enr","node_id","udp","seq","children"} per node, then
//           {"event":"ready","ready":true,"nodes":N,"fanout":K}
//   stdin commands, one JSON object per line: {"cmd":"tables"} ->
//           {"event":"tables","nodes":[{"index","node_ids":[...]}]} (each node's routing table now)
//   --trace 1 adds the library's own events: enr_added, session_established, talk_req. Off by default:
//   stdout is a pipe, and a reader that stops reading would block this whole process once it fills.
//
// client: one node that adds --target to its table, sends it PING (unless --ping 0) and one FINDNODE per
// entry of --requests (a JSON list of distance lists) through the library's public API, reports each
// answer and exits.
//   stdout: {"event":"client","enr","node_id","udp"}
//           {"event":"session_established","peer","direction","verified"}  (whenever the library says so)
//           {"event":"pong","ok":true,"enr_seq","ip","port"} | {"event":"pong","ok":false,"message"}
//           {"event":"nodes","distances":[...],"ok":true,"enrs":["enr:..."]} | {..."ok":false,"message"}
//           {"event":"done"}
//
// Both modes stop by themselves: when stdin closes, on SIGTERM, or after --duration seconds.
import { Discv5, generateKeypair } from '@chainsafe/discv5'
import { SignableENR } from '@chainsafe/enr'
import { multiaddr } from '@multiformats/multiaddr'
import { createInterface } from 'node:readline'

import { LOOPBACK, emit, exitWhenToldOrAfter, fail, parseArgs } from './harness.mjs'

const MAX_NODES = 200 // one process, one socket each: far above what a test needs
const MAX_FANOUT = 16 // a bucket's size: more children than that could not all sit in one table
const MAX_REQUEST_DISTANCE = 65535 // 16 bits, as ethcrawl decodes them: the library ignores those above 256

const opts = parseArgs(process.argv.slice(2), {
  mode: 'network',
  nodes: '1',
  'base-port': '0',
  fanout: '2',
  trace: '0',
  target: '',
  requests: '[[0]]',
  ping: '1',
  port: '0',
  duration: '60',
})
const trace = opts.trace !== '0'

function hex(bytes) {
  return Buffer.from(bytes).toString('hex')
}

/** A started chainsafe node on 127.0.0.1:port (0 = ephemeral) whose ENR carries its real address. */
async function startNode(port) {
  const keypair = generateKeypair('secp256k1')
  const enr = SignableENR.createV4(keypair.privateKey)
  enr.ip = LOOPBACK
  if (port !== 0) enr.udp = port
  const discv5 = Discv5.create({
    enr,
    privateKey: { type: 'secp256k1', raw: keypair.privateKey },
    bindAddrs: { ip4: multiaddr(`/ip4/${LOOPBACK}/udp/${port}`) },
    // Loopback address votes would confirm the ENR anyway; off so that no record can change mid-test.
    config: { enrUpdate: false },
  })
  await discv5.start()
  if (port === 0) {
    // The transport keeps its socket to itself; the bound port is only known there.
    enr.udp = discv5.sessionService.transport.ip4.socket.address().port
  }
  return discv5
}

function reportLibraryEvents(discv5, fields) {
  discv5.sessionService.on('established', (_addr, enr, direction, verified) =>
    emit('session_established', { ...fields, peer: enr.nodeId, direction, verified }),
  )
  if (!trace) return
  discv5.on('enrAdded', (enr) => emit('enr_added', { ...fields, node_id: enr.nodeId }))
  discv5.on('talkReqReceived', (_addr, _enr, message) =>
    emit('talk_req', { ...fields, protocol: hex(message.protocol) }),
  )
}

function listenForCommands(handlers) {
  const lines = createInterface({ input: process.stdin })
  lines.on('line', (line) => {
    if (line.trim() === '') return
    let cmd
    try {
      cmd = JSON.parse(line)
    } catch {
      return emit('error', { where: 'command', message: `not JSON: ${line.slice(0, 200)}` })
    }
    const handler = handlers[cmd.cmd]
    if (handler === undefined) return emit('error', { where: 'command', message: `unknown command ${cmd.cmd}` })
    handler(cmd)
  })
}

function stopAll(services) {
  for (const discv5 of services) discv5.stop().catch(() => {})
}

async function runNetwork() {
  const count = Number(opts.nodes)
  const basePort = Number(opts['base-port'])
  const fanout = Number(opts.fanout)
  if (!Number.isInteger(count) || count < 1 || count > MAX_NODES) fail(`--nodes must be 1..${MAX_NODES}`)
  if (!Number.isInteger(basePort) || (basePort !== 0 && (basePort < 1024 || basePort + count > 65536)))
    fail('--base-port must be 0 (ephemeral) or leave room for --nodes ports below 65536')
  if (!Number.isInteger(fanout) || fanout < 1 || fanout > MAX_FANOUT) fail(`--fanout must be 1..${MAX_FANOUT}`)
  const children = (i) => Array.from({ length: fanout }, (_, k) => fanout * i + 1 + k).filter((c) => c < count)

  const services = []
  exitWhenToldOrAfter(opts.duration, () => stopAll(services))
  try {
    for (let i = 0; i < count; i++) services.push(await startNode(basePort === 0 ? 0 : basePort + i))
  } catch (err) {
    fail(`could not listen: ${err?.message ?? err}`)
  }
  services.forEach((discv5, index) => reportLibraryEvents(discv5, { node: index }))
  // Every record is final now (the port is in it), so the copies handed to parents stay current.
  services.forEach((discv5, index) => {
    for (const child of children(index)) {
      const before = discv5.kadValues().length
      discv5.addEnr(services[child].enr.toENR())
      if (discv5.kadValues().length !== before + 1) fail(`node ${index} did not take child ${child} into its table`)
    }
  })
  services.forEach((discv5, index) =>
    emit('node', {
      index,
      enr: discv5.enr.encodeTxt(),
      node_id: discv5.enr.nodeId,
      udp: discv5.enr.udp,
      seq: Number(discv5.enr.seq),
      children: children(index),
    }),
  )
  listenForCommands({
    tables: () =>
      emit('tables', {
        nodes: services.map((discv5, index) => ({ index, node_ids: discv5.kadValues().map((enr) => enr.nodeId) })),
      }),
  })
  emit('ready', { ready: true, nodes: count, fanout })
}

function parseRequests(text) {
  let requests
  try {
    requests = JSON.parse(text)
  } catch {
    fail('--requests must be JSON: a list of distance lists')
  }
  const ok =
    Array.isArray(requests) &&
    requests.every(
      (r) => Array.isArray(r) && r.length > 0 && r.every((d) => Number.isInteger(d) && d >= 0 && d <= MAX_REQUEST_DISTANCE),
    )
  if (!ok) fail(`--requests must be a list of non-empty lists of distances 0..${MAX_REQUEST_DISTANCE}`)
  return requests
}

async function runClient() {
  if (!opts.target.startsWith('enr:')) fail('--mode client needs --target enr:...')
  const requests = parseRequests(opts.requests)
  const port = Number(opts.port)
  if (!Number.isInteger(port) || port < 0 || port > 65535) fail('--port must be 0..65535')

  const services = []
  const stop = exitWhenToldOrAfter(opts.duration, () => stopAll(services))
  let discv5
  try {
    discv5 = await startNode(port)
  } catch (err) {
    fail(`could not listen: ${err?.message ?? err}`)
  }
  services.push(discv5)
  reportLibraryEvents(discv5, {})
  emit('client', { enr: discv5.enr.encodeTxt(), node_id: discv5.enr.nodeId, udp: discv5.enr.udp })

  discv5.addEnr(opts.target)
  const target = discv5.kadValues().find((enr) => enr.encodeTxt() === opts.target)
  if (target === undefined) fail('the library did not accept --target into its table')
  if (opts.ping !== '0') {
    try {
      const pong = await discv5.sendPing(target)
      emit('pong', {
        ok: true,
        enr_seq: Number(pong.enrSeq),
        ip: Array.from(pong.addr.ip.octets).join('.'),
        ip_type: pong.addr.ip.type,
        port: pong.addr.port,
      })
    } catch (err) {
      emit('pong', { ok: false, message: String(err?.message ?? err) })
    }
  }
  for (const distances of requests) {
    try {
      const enrs = await discv5.sendFindNode(target, distances)
      emit('nodes', { distances, ok: true, enrs: enrs.map((enr) => enr.encodeTxt()) })
    } catch (err) {
      emit('nodes', { distances, ok: false, message: String(err?.message ?? err) })
    }
  }
  emit('done')
  stop('done')
}

if (opts.mode === 'network') await runNetwork()
else if (opts.mode === 'client') await runClient()
else fail(`unknown --mode ${opts.mode}: network or client`)
