import { describe, it, expect, afterEach } from 'vitest';
import { WebhookRequestError } from '../../host/errors.js';
import { classifyAddress, parseIp, resolveAndVet, SsrfPolicy, systemLookup } from '../../host/hooks/ssrf.js';
import { receiver, testService, waitUntil, type Receiver, type TestService } from './helpers.js';

// Classification only: nothing here opens a connection.
const REFUSED: [string, RegExp][] = [
  ['10.0.0.1', /^private/],
  ['10.255.255.255', /^private/],
  ['172.16.0.1', /^private/],
  ['172.31.255.254', /^private/],
  ['192.168.1.1', /^private/],
  ['127.0.0.1', /^loopback/],
  ['127.1.2.3', /^loopback/],
  ['169.254.169.254', /^cloud metadata/],
  ['169.254.1.1', /^link-local/],
  ['100.64.0.1', /^CGNAT/],
  ['100.127.255.254', /^CGNAT/],
  ['100.100.100.200', /^cloud metadata/],
  ['0.0.0.0', /^unspecified/],
  ['0.1.2.3', /^this network/],
  ['224.0.0.1', /^multicast/],
  ['240.0.0.1', /^reserved \(class E\)/],
  ['255.255.255.255', /^broadcast/],
  ['192.0.2.1', /^documentation/],
  ['198.18.0.1', /^benchmarking/],
  ['::1', /^loopback/],
  ['::', /^unspecified/],
  ['fe80::1', /^link-local/],
  ['fe80::1%eth0', /^link-local/],
  ['fc00::1', /^unique local/],
  ['fd12:3456::1', /^unique local/],
  ['fd00:ec2::254', /^cloud metadata/],
  ['fec0::1', /^site-local/],
  ['ff02::1', /^multicast/],
  ['2001:db8::1', /^documentation/],
  ['2001:0:4136:e378:8000:63bf:3fff:fdd2', /Teredo/],
  ['::ffff:127.0.0.1', /^loopback \(IPv4-mapped\)/],
  ['::ffff:7f00:1', /^loopback \(IPv4-mapped\)/],
  ['[::ffff:7f00:1]', /^loopback \(IPv4-mapped\)/],
  ['::ffff:169.254.169.254', /^cloud metadata \(IPv4-mapped\)/],
  ['::ffff:a00:1', /^private \(IPv4-mapped\)/],
  ['64:ff9b::a00:1', /^private \(NAT64\)/],
  ['64:ff9b::7f00:1', /^loopback \(NAT64\)/],
  ['64:ff9b:1::1', /^NAT64 local-use/],
  ['2002:a00:1::', /^private \(6to4\)/],
  ['2002:7f00:1::1', /^loopback \(6to4\)/],
  ['2002:a9fe:a9fe::', /^cloud metadata \(6to4\)/],
  ['::a00:1', /^reserved/], // IPv4-compatible (deprecated)
  ['100::1', /^discard-only/],
  ['4000::1', /^reserved \(outside 2000::\/3\)/],
  ['not-an-ip', /^not an IP address/],
];

const ALLOWED = ['93.184.216.34', '8.8.8.8', '172.32.0.1', '100.128.0.1', '2606:4700:4700::1111', '2a00:1450:4001::1', '::ffff:8.8.8.8', '64:ff9b::808:808', '2002:808:808::1'];

describe('address classification (the SSRF matrix)', () => {
  it.each(REFUSED)('%s is refused', (address, category) => {
    const v = classifyAddress(address);
    expect(v.public).toBe(false);
    expect(v.category).toMatch(category);
  });

  it.each(ALLOWED)('%s is public', (address) => {
    expect(classifyAddress(address)).toMatchObject({ public: true });
  });

  it('reports the matching range and the embedded IPv4', () => {
    expect(classifyAddress('10.1.2.3').range).toBe('10.0.0.0/8');
    expect(classifyAddress('64:ff9b::a00:1')).toMatchObject({ embedded: '10.0.0.1', via: 'NAT64', range: '10.0.0.0/8' });
    expect(classifyAddress('2002:a00:1::')).toMatchObject({ embedded: '10.0.0.1', via: '6to4' });
  });

  it('URL literal forms are normalized by the WHATWG parser before classification', () => {
    for (const url of ['http://2130706433/', 'http://0x7f.1/', 'http://0177.0.0.1/', 'http://127.1/', 'http://[::ffff:127.0.0.1]/', 'http://[0:0:0:0:0:ffff:7f00:1]/']) {
      const host = new URL(url).hostname;
      expect(classifyAddress(host).category, url).toMatch(/^loopback/);
    }
  });

  it('parses IPv6 with an embedded dotted quad and compressed zeros', () => {
    expect(parseIp('::ffff:1.2.3.4')).toEqual({ v: 6, w: [0, 0, 0, 0, 0, 0xffff, 0x0102, 0x0304] });
    expect(parseIp('1::')).toEqual({ v: 6, w: [1, 0, 0, 0, 0, 0, 0, 0] });
    expect(parseIp('1.2.3')).toBeNull();
  });
});

describe('policy: allowlist and resolution', () => {
  it('an allowlisted range opens only that range; a mapped address matches as its IPv4', () => {
    const p = new SsrfPolicy({ allowCidrs: ['127.0.0.1/32', 'fd12::/16'] });
    expect(p.check('127.0.0.1').public).toBe(true);
    expect(p.check('::ffff:127.0.0.1').public).toBe(true);
    expect(p.check('127.0.0.2').public).toBe(false);
    expect(p.check('fd12:1::1').public).toBe(true);
    expect(p.check('169.254.169.254').public).toBe(false);
  });

  it('an allowlisted host accepts whatever it resolves to; *.suffix covers subdomains', () => {
    const p = new SsrfPolicy({ allowHosts: ['hooks.internal', '*.svc.cluster'] });
    expect(() => p.vet('hooks.internal', ['10.0.0.5'])).not.toThrow();
    expect(() => p.vet('a.svc.cluster', ['10.0.0.5'])).not.toThrow();
    expect(() => p.vet('other.internal', ['10.0.0.5'])).toThrow(/resolves to 10\.0\.0\.5, private 10\.0\.0\.0\/8 \(allow it with event_hooks\.allow_hosts or event_hooks\.allow_cidrs\)/);
  });

  it('refuses when ANY resolved address is forbidden', async () => {
    const lookup = async (): Promise<string[]> => ['93.184.216.34', '10.1.2.3'];
    const err = await resolveAndVet('mixed.test', new SsrfPolicy(), lookup, 1000).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WebhookRequestError);
    expect((err as WebhookRequestError).reason).toBe('refused');
    expect((err as Error).message).toMatch(/mixed\.test resolves to 10\.1\.2\.3/);
    // A public-only answer passes at the classification level (no connection is made here).
    expect(await resolveAndVet('public.test', new SsrfPolicy(), async () => ['93.184.216.34', '2606:4700::1111'], 1000)).toEqual([
      '93.184.216.34',
      '2606:4700::1111',
    ]);
  });

  it('localhost resolves to loopback and is refused', async () => {
    await expect(resolveAndVet('localhost', new SsrfPolicy(), systemLookup, 2000)).rejects.toThrow(/refused by the SSRF guard: localhost resolves to (127\.0\.0\.1|::1)/);
  });

  it('a DNS failure is reported as reason "dns"', async () => {
    const err = await resolveAndVet('x.invalid', new SsrfPolicy(), async () => Promise.reject(Object.assign(new Error('nope'), { code: 'ENOTFOUND' })), 1000).catch((e: unknown) => e);
    expect(err).toMatchObject({ reason: 'dns', message: 'cannot resolve x.invalid: ENOTFOUND' });
  });

  it('a bad allowlist entry is a TypeError naming the option', () => {
    expect(() => new SsrfPolicy({ allowCidrs: ['10.0.0.0/33'] })).toThrow(/event_hooks\.allow_cidrs: "10\.0\.0\.0\/33" is not a CIDR range/);
  });
});

describe('the guard in the delivery path', () => {
  let svc: TestService | undefined;
  const rs: Receiver[] = [];
  afterEach(async () => {
    await svc?.close();
    svc = undefined;
    await Promise.all(rs.splice(0).map((r) => r.close()));
  });

  async function deliverTo(url: string): Promise<{ hookId: string }> {
    const hook = await svc!.hooks.createHook({ source: 'crud', event: 'routes:create', handler: 'webhook', config: { url } });
    await svc!.hooks.emitCrud('routes', 'create', { id: 'r' });
    return { hookId: hook.id };
  }
  const finished = (hookId: string) =>
    waitUntil(async () => (await svc!.hooks.deliveries(hookId)).data.find((d) => d.state === 'failed' || d.state === 'succeeded'));

  it.each([
    ['http://10.0.0.1:9/hook', /10\.0\.0\.1 is private 10\.0\.0\.0\/8/],
    ['http://169.254.169.254/latest/meta-data/', /169\.254\.169\.254 is cloud metadata/],
    ['http://[fd00:ec2::254]/', /fd00:ec2::254 is cloud metadata/],
    ['http://[::ffff:127.0.0.2]:9/', /127\.0\.0\.2|7f00:2/],
    ['http://2130706433:9/', /127\.0\.0\.1 is loopback/],
    ['http://[64:ff9b::a00:1]/', /private \(NAT64\)/],
  ])('%s: refused, recorded as a failed attempt, not retried', async (url, reason) => {
    svc = await testService({ ssrf: { allowCidrs: [] } });
    const { hookId } = await deliverTo(url);
    const d = await finished(hookId);
    expect(d.state).toBe('failed');
    expect(d.attempt_count).toBe(1);
    expect(d.attempts).toHaveLength(1);
    expect(d.attempts[0]!.status).toBeNull();
    expect(d.attempts[0]!.error).toMatch(/^refused by the SSRF guard: .*\(allow it with event_hooks\.allow_(hosts or event_hooks\.allow_)?cidrs\)$/);
    expect(d.attempts[0]!.error).toMatch(reason);
    const m = await svc.hooks.metrics();
    expect(m.find((s) => s.name === 'hookwire_event_hooks_attempts_total' && s.labels?.result === 'refused')!.value).toBe(1);
  });

  it('a name resolving to loopback (localhost) is refused without the allowlist', async () => {
    const r = await receiver();
    rs.push(r);
    svc = await testService({ ssrf: { allowCidrs: [] } });
    const { hookId } = await deliverTo(`http://localhost:${new URL(r.url).port}/hook`);
    const d = await finished(hookId);
    expect(d.attempts[0]!.error).toMatch(/localhost resolves to/);
    expect(r.received).toHaveLength(0);
  });

  it('connects to the vetted address, keeping the Host header (DNS pinning)', async () => {
    const r = await receiver();
    rs.push(r);
    const port = new URL(r.url).port;
    const asked: string[] = [];
    svc = await testService({ ssrf: { allowCidrs: ['127.0.0.1/32'], lookup: async (h) => (asked.push(h), ['127.0.0.1']) } });
    await deliverTo(`http://hooks.example.test:${port}/hook`);
    const [req] = await r.waitFor(1);
    expect(req!.headers.host).toBe(`hooks.example.test:${port}`);
    expect(asked).toEqual(['hooks.example.test']);
  });

  it('re-checks on every retry: a name that later resolves to a private address is refused on the retry', async () => {
    const r = await receiver((_, res) => {
      res.statusCode = 500;
      res.end();
    });
    rs.push(r);
    const port = new URL(r.url).port;
    let n = 0;
    svc = await testService({ ssrf: { allowCidrs: ['127.0.0.1/32'], lookup: async () => (n++ === 0 ? ['127.0.0.1'] : ['10.9.9.9']) } });
    const { hookId } = await deliverTo(`http://rebind.test:${port}/hook`);
    const d = await waitUntil(async () => (await svc!.hooks.deliveries(hookId)).data.find((x) => x.state === 'failed'));
    expect(d.attempts.map((a) => a.status)).toEqual([500, null]);
    expect(d.attempts[1]!.error).toMatch(/rebind\.test resolves to 10\.9\.9\.9/);
    expect(r.received).toHaveLength(1);
  });

  it('a redirect to a private address is not followed', async () => {
    const r = await receiver((_, res) => {
      res.statusCode = 307;
      res.setHeader('location', 'http://10.0.0.1/steal');
      res.end();
    });
    rs.push(r);
    svc = await testService({ delivery: { retrySchedule: [] } });
    const { hookId } = await deliverTo(r.url);
    const d = await finished(hookId);
    expect(d.attempts).toHaveLength(1);
    expect(d.attempts[0]).toMatchObject({ status: 307 });
    expect(d.attempts[0]!.error).toMatch(/redirects are not followed; location http:\/\/10\.0\.0\.1\/steal/);
  });

  it('test() applies the guard and throws WebhookRequestError("refused")', async () => {
    svc = await testService({ ssrf: { allowCidrs: [] } });
    const hook = await svc.hooks.createHook({ source: 's', handler: 'webhook', config: { url: 'http://192.168.0.10/' } });
    const err = await svc.hooks.test(hook.id, { a: 1 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WebhookRequestError);
    expect(err).toMatchObject({ code: 'HW_ERR_WEBHOOK_REQUEST', reason: 'refused' });
  });
});
