// The relay actor in JavaScript: the `example:relay/relay` world
// (examples-guests/wit/relay/relay.wit). It talks to other actors through
// the `troupe:actor/host` import: messages go out as WAVE text
// (`incr(5)`), replies come back as WAVE text (`5`, `ok(5)`).
//
// componentize-js turns an imported function's `result` error into a
// thrown error whose `payload` is the WIT value (here the host's `error`
// variant, `{ tag, val }`); an export returning `result` returns its `ok`
// value or throws its `err` value.

import { ask, tell, log } from 'troupe:actor/host@0.2.0';

/** How long to wait for each answer; 0 would mean the host default (5 s). */
const ASK_TIMEOUT_MS = 5000;

let forwarded = 0n;

/** `text` as a WAVE string literal. */
function waveString(text) {
    let out = '"';
    for (const ch of text) {
        const code = ch.codePointAt(0);
        if (ch === '"' || ch === '\\') out += '\\' + ch;
        else if (ch === '\n') out += '\\n';
        else if (ch === '\r') out += '\\r';
        else if (ch === '\t') out += '\\t';
        else if (code < 0x20 || code === 0x7f) out += `\\u{${code.toString(16)}}`;
        else out += ch;
    }
    return out + '"';
}

/** The text of a WAVE string literal, or undefined if `wave` is not one. */
function parseWaveString(wave) {
    if (wave.length < 2 || !wave.startsWith('"') || !wave.endsWith('"')) return undefined;
    const escapes = { n: '\n', r: '\r', t: '\t', '"': '"', "'": "'", '\\': '\\' };
    let out = '';
    for (let i = 1; i < wave.length - 1; i++) {
        if (wave[i] !== '\\') {
            out += wave[i];
        } else if (wave[i + 1] === 'u') {
            const end = wave.indexOf('}', i);
            out += String.fromCodePoint(parseInt(wave.slice(i + 3, end), 16));
            i = end;
        } else {
            out += escapes[wave[i + 1]];
            i += 1;
        }
    }
    return out;
}

/** The host's `error` variant in WAVE, e.g. `unknown-address("nobody")`. */
function waveError(error) {
    switch (error.tag) {
        case 'timeout':
            return 'timeout';
        case 'too-large':
            return `too-large(${error.val})`;
        case 'cycle':
            return `cycle([${error.val.map(waveString).join(', ')}])`;
        default:
            return `${error.tag}(${waveString(error.val)})`;
    }
}

/** Runs a host call; a host error becomes the relay's error text. */
function hostCall(verb, to, call) {
    try {
        const result = call();
        forwarded += 1n;
        return result;
    } catch (e) {
        throw `${verb} \`${to}\` failed: ${waveError(e.payload)}`;
    }
}

/** Asks `to` with `message` and returns the answer as a u64 (BigInt). */
function askU64(to, message) {
    log('debug', 'relay (js) asks', [['to', to], ['message', message]]);
    const reply = hostCall('ask', to, () => ask(to, message, ASK_TIMEOUT_MS));
    // A counter answers `5`; a relay answers `ok(5)` or `err("why")`.
    const ok = /^([0-9]+)$|^ok\(([0-9]+)\)$/.exec(reply);
    if (ok) return BigInt(ok[1] ?? ok[2]);
    if (reply.startsWith('err(') && reply.endsWith(')')) {
        const why = parseWaveString(reply.slice(4, -1));
        if (why !== undefined) throw why;
    }
    throw `ask \`${to}\` answered \`${reply}\`, not a u64`;
}

export const api = {
    forward(to, by) {
        return askU64(to, `incr(${by})`);
    },
    route(hops, by) {
        if (hops.length === 0) throw 'no hops';
        const [next, ...rest] = hops;
        const message = rest.length === 0 ? `incr(${by})` : `route([${rest.map(waveString).join(', ')}], ${by})`;
        return askU64(next, message);
    },
    notify(to, by) {
        hostCall('tell', to, () => tell(to, `incr(${by})`));
    },
    forwarded() {
        return forwarded;
    },
    crash(reason) {
        throw new Error(reason);
    },
};
