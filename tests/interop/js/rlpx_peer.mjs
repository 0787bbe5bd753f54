// An @ethereumjs/devp2p RLPx listener on 127.0.0.1 for the interop tests.
//
//   node rlpx_peer.mjs [--private-key HEX] [--client-id S] [--caps eth/68,eth/67] [--chain mainnet]
//                      [--hardfork NAME] [--genesis-hash 0x..] [--td N] [--best-hash 0x..]
//                      [--port 0] [--max-seconds 30]
//
// Prints {"event":"listening","enode":...,"port":...,"pubkey":...} once, then one JSON line per event
// (hello, peer_added, status_sent, status, ping, eth_message, disconnect, peer_removed, error, exit).
// On each connected peer it sends its own Status at once, as the library's own examples do: the library
// compares the two Status messages only when both have been sent, and disconnects 0x10 on a mismatch.
import { RLPx } from '@ethereumjs/devp2p'

import {
  DEFAULTS,
  LOOPBACK,
  chainSettings,
  emit,
  exitWhenToldOrAfter,
  loadPrivateKey,
  observePeers,
  parseArgs,
  parseCaps,
  pubkeyHex,
  reportLibraryErrors,
  startEth,
} from './harness.mjs'

const opts = parseArgs(process.argv.slice(2), { ...DEFAULTS, port: '0' })
const privateKey = loadPrivateKey(opts['private-key'])
const { common, status } = chainSettings(opts)
observePeers()

const rlpx = new RLPx(privateKey, {
  clientId: new TextEncoder().encode(opts['client-id']),
  capabilities: parseCaps(opts.caps),
  common,
  maxPeers: 4,
  // No DPT: this node never dials out, so nothing ever resolves a name or leaves loopback.
  dpt: null,
  listenPort: null,
})
reportLibraryErrors(rlpx)
rlpx.events.on('peer:added', (peer) => startEth(peer, status))
rlpx.events.on('listening', () => {
  const port = rlpx._server.address().port
  const pubkey = pubkeyHex(privateKey)
  emit('listening', { enode: `enode://${pubkey}@${LOOPBACK}:${port}`, port, pubkey })
})
exitWhenToldOrAfter(opts['max-seconds'], () => rlpx.destroy())
rlpx.listen(Number(opts.port), LOOPBACK)
