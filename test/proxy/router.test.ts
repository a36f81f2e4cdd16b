import { describe, expect, it } from 'vitest';
import { normalizeHost, Router, upstreamTarget } from '../../host/proxy/router.js';
import { promName } from '../../host/proxy/metrics.js';

const route = (value: string, hosts: string[] = [], paths: string[] = [], methods: string[] = []) => ({ value, hosts, paths, methods });

describe('Router', () => {
  const router = new Router([
    route('any-root', [], ['/']),
    route('any-api', [], ['/api']),
    route('any-api-get', [], ['/api'], ['GET']),
    route('wild', ['*.example.com'], ['/']),
    route('wild-deep', ['*.a.example.com'], ['/']),
    route('exact', ['api.example.com'], ['/v1', '/v2']),
    route('no-paths', ['bare.test']),
  ]);
  const m = (method: string, host: string, url: string) => router.match(method, normalizeHost(host), url);

  it('prefers exact hosts, then longer wildcards, then any host', () => {
    expect(m('GET', 'api.example.com', '/v1/x')?.value).toBe('exact');
    expect(m('GET', 'api.example.com', '/other')?.value).toBe('wild'); // exact host, but no path of it matches
    expect(m('GET', 'x.a.example.com', '/')?.value).toBe('wild-deep');
    expect(m('GET', 'x.example.com', '/')?.value).toBe('wild');
    expect(m('GET', 'example.com', '/')?.value).toBe('any-root');
  });

  it('picks the longest prefix, then routes with methods, and reports the matched prefix', () => {
    expect(m('GET', '', '/api/x')).toEqual(expect.objectContaining({ value: 'any-api-get', prefix: '/api' }));
    expect(m('POST', '', '/api/x')?.value).toBe('any-api');
    expect(m('GET', '', '/apix')?.value).toBe('any-api-get'); // plain string prefix, as Kong and Envoy
    expect(m('GET', '', '/x?api')?.value).toBe('any-root');
    expect(m('GET', 'bare.test', '/anything')).toEqual(expect.objectContaining({ value: 'no-paths', prefix: '' }));
  });

  it('returns null when nothing matches', () => {
    expect(new Router([route('r', [], ['/only'])]).match('GET', '', '/other')).toBeNull();
  });
});

describe('normalizeHost', () => {
  it('lower-cases and drops the port, IPv6 included', () => {
    expect(normalizeHost('API.Example.COM:8000')).toBe('api.example.com');
    expect(normalizeHost('[::1]:8000')).toBe('::1');
    expect(normalizeHost(undefined)).toBe('');
  });
});

describe('upstreamTarget', () => {
  it('joins the service path and the request target with one slash (Kong)', () => {
    expect(upstreamTarget('', '/a/b?x=1', '')).toBe('/a/b?x=1');
    expect(upstreamTarget('/base', '/a?x', '')).toBe('/base/a?x');
    expect(upstreamTarget('/base/', '/a', '')).toBe('/base/a');
    expect(upstreamTarget('', '/api/v1/users', '/api/v1')).toBe('/users');
    expect(upstreamTarget('', '/api/v1', '/api/v1')).toBe('/');
    expect(upstreamTarget('', '/api/v1?q', '/api/v1')).toBe('/?q');
    expect(upstreamTarget('/s', '/api/v1', '/api/v1')).toBe('/s');
    expect(upstreamTarget('/s', '/api/v1/x', '/api/v1')).toBe('/s/x');
    expect(upstreamTarget('/s', '/api/v1x', '/api/v1')).toBe('/s/x');
  });
});

describe('promName', () => {
  it('sanitizes proxy-wasm metric names for Prometheus', () => {
    expect(promName('filter.requests')).toBe('filter_requests');
    expect(promName('9lives')).toBe('_9lives');
    expect(promName('hookwire_http_requests_total')).toBe('plugin_hookwire_http_requests_total');
  });
});
