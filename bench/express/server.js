// The Express reference of bench/side-by-side.sh: Rampart's five benchmark routes built the
// way the Node.js security guides prescribe, with its data in memory (no database at all).
//
//   BENCH_EMAIL=… BENCH_PASSWORD=… PORT=0 node server.js
//
// Stack, outermost first: helmet (defaults), cors (no cross-origin origin allowed, as
// Rampart's default), express-rate-limit (global, per IP; the quota is BENCH_RATE_LIMIT
// requests per hour so a benchmark cannot spend it, as Rampart runs in the benchmark),
// express.json({ limit: '10kb' }), hpp, pino-http (one log line per request), zod
// `.strict()` schemas on every input, jose EdDSA access tokens (15 min, the claims of
// API.md §4, the account and its session checked on every request), argon2id at Rampart's
// cost (m=19456 KiB, t=2, p=1) and a login limiter counting only failures.
//
// Routes: GET /health, GET /api/v1/products?q=&page=&limit= (1 000 products seeded, the
// shape, ordering — newest first — and total of API.md §5), GET /api/v1/me (bearer),
// POST /api/v1/orders (stock checked and decremented exactly: one event loop, no await
// between the check and the decrement), POST /api/v1/auth/login.
//
// On start it prints one JSON line holding "listen":"127.0.0.1:PORT" (PORT=0: a free port).

import { createHash, randomBytes, randomUUID } from 'node:crypto';

import argon2 from 'argon2';
import cors from 'cors';
import express from 'express';
import { rateLimit } from 'express-rate-limit';
import helmet from 'helmet';
import hpp from 'hpp';
import { SignJWT, errors as joseErrors, generateKeyPair, jwtVerify } from 'jose';
import pino from 'pino';
import { pinoHttp } from 'pino-http';
import { z } from 'zod';

const ISSUER = process.env.BENCH_PUBLIC_URL ?? 'http://127.0.0.1:8080';
const AUDIENCE = 'rampart';
const ACCESS_TTL_S = 15 * 60;
const REFRESH_TTL_S = 7 * 24 * 3600;
const PRODUCTS = Number(process.env.BENCH_PRODUCTS ?? 1000);
const ARGON2 = { type: argon2.argon2id, memoryCost: 19456, timeCost: 2, parallelism: 1 };

const logger = pino({
  level: process.env.LOG_LEVEL ?? 'info',
  redact: ['req.headers.authorization', 'req.headers.cookie', 'res.headers["set-cookie"]'],
});

// --- data, in memory --------------------------------------------------------

const users = new Map(); // id -> user
const usersByEmail = new Map(); // email -> user
const sessions = new Map(); // session family id -> { userId, revoked, refreshHash }
const products = []; // newest first, as the listing orders them
const productsById = new Map();
const orders = new Map();

// RFC 3339 UTC with milliseconds, as Rampart writes times.
const rfc3339 = (ms) => new Date(ms).toISOString();

function seedProducts() {
  const base = Date.now() - PRODUCTS * 1000;
  const created = [];
  for (let i = 1; i <= PRODUCTS; i += 1) {
    const at = rfc3339(base + i * 1000);
    const p = {
      id: randomUUID(),
      name: `prod ${i}`,
      description: '<p>a product</p>',
      price_cents: 100 + i,
      currency: 'EUR',
      stock: 1_000_000,
      created_at: at,
      updated_at: at,
    };
    created.push(p);
    productsById.set(p.id, p);
  }
  // ORDER BY created_at DESC, id DESC
  created.sort((a, b) => (a.created_at === b.created_at
    ? (a.id < b.id ? 1 : -1)
    : (a.created_at < b.created_at ? 1 : -1)));
  products.push(...created);
}

async function seedAdmin() {
  const email = process.env.BENCH_EMAIL;
  const password = process.env.BENCH_PASSWORD;
  if (!email || !password) throw new Error('BENCH_EMAIL and BENCH_PASSWORD are required');
  const user = {
    id: randomUUID(),
    email: email.toLowerCase(),
    name: 'Admin',
    bio: '',
    role: 'admin',
    active: true,
    email_verified: true,
    mfa_enabled: false,
    created_at: rfc3339(Date.now()),
    password_hash: await argon2.hash(password, ARGON2),
  };
  users.set(user.id, user);
  usersByEmail.set(user.email, user);
}

const userBody = (u) => ({
  id: u.id,
  email: u.email,
  name: u.name,
  bio: u.bio,
  role: u.role,
  active: u.active,
  email_verified: u.email_verified,
  mfa_enabled: u.mfa_enabled,
  created_at: u.created_at,
});

// --- errors: RFC 9457 problems ---------------------------------------------

function problem(res, status, code, title, extra = {}) {
  res.status(status).type('application/problem+json').json({
    type: 'about:blank',
    title,
    status,
    detail: title,
    code,
    request_id: res.req.id,
    ...extra,
  });
}

const fieldErrors = (error) => error.issues.map((i) => ({
  field: i.path.map((p, n) => (typeof p === 'number' ? `[${p}]` : `${n ? '.' : ''}${p}`)).join('')
    || (i.keys ? i.keys.join(',') : ''),
  message: i.message,
}));

function validate(schema, value, res) {
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    problem(res, 400, 'validation_failed', 'Validation failed', { errors: fieldErrors(parsed.error) });
    return null;
  }
  return parsed.data;
}

// --- schemas (zod, strict) --------------------------------------------------

const intString = (min, max) => z.string().regex(/^\d{1,7}$/).transform(Number).pipe(z.number().int().min(min).max(max));
const ProductQuery = z.object({
  q: z.string().min(1).max(100).optional(),
  page: intString(1, 100_000).default(1),
  limit: intString(1, 100).default(20),
  min_price: intString(0, 1_000_000_000).optional(),
  max_price: intString(0, 1_000_000_000).optional(),
}).strict();
const Login = z.object({
  email: z.string().email().max(254),
  password: z.string().min(1).max(1024),
}).strict();
const Order = z.object({
  items: z.array(z.object({
    product_id: z.string().uuid(),
    quantity: z.number().int().min(1).max(100),
  }).strict()).min(1).max(50),
  shipping_address: z.object({
    street: z.string().min(1).max(200),
    city: z.string().min(1).max(100),
    postal_code: z.string().regex(/^[A-Za-z0-9]{3,10}$/),
    country: z.string().regex(/^[A-Z]{2}$/),
  }).strict(),
  coupon_code: z.string().regex(/^[A-Za-z0-9]{1,20}$/).optional(),
}).strict();

// --- tokens (jose, EdDSA) ---------------------------------------------------

const { publicKey, privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
const KID = 'bench-1';

async function accessToken(user, sid) {
  return new SignJWT({ sid, role: user.role })
    .setProtectedHeader({ alg: 'EdDSA', typ: 'at+jwt', kid: KID })
    .setIssuer(ISSUER)
    .setAudience(AUDIENCE)
    .setSubject(user.id)
    .setIssuedAt()
    .setNotBefore('0s')
    .setExpirationTime(`${ACCESS_TTL_S}s`)
    .setJti(randomUUID())
    .sign(privateKey);
}

async function authenticate(req, res, next) {
  const header = req.get('authorization') ?? '';
  const match = /^Bearer ([A-Za-z0-9._-]+)$/.exec(header);
  if (!match) return problem(res, 401, 'unauthenticated', 'Authentication required');
  try {
    const { payload, protectedHeader } = await jwtVerify(match[1], publicKey, {
      issuer: ISSUER,
      audience: AUDIENCE,
      algorithms: ['EdDSA'],
      typ: 'at+jwt',
      clockTolerance: 30,
    });
    if (protectedHeader.kid !== KID) throw new joseErrors.JWSSignatureVerificationFailed();
    const user = users.get(payload.sub);
    const session = sessions.get(payload.sid);
    if (!user || !user.active || !session || session.revoked || session.userId !== user.id) {
      return problem(res, 401, 'invalid_token', 'Invalid token');
    }
    req.user = user;
    return next();
  } catch (e) {
    if (e instanceof joseErrors.JWTExpired) return problem(res, 401, 'token_expired', 'Token expired');
    return problem(res, 401, 'invalid_token', 'Invalid token');
  }
}

// --- the app ----------------------------------------------------------------

const app = express();
app.set('trust proxy', false);
app.set('query parser', 'simple');
app.use(helmet());
app.use(cors({ origin: [] }));
app.use(rateLimit({
  windowMs: 60 * 60 * 1000,
  limit: Number(process.env.BENCH_RATE_LIMIT ?? 100_000_000),
  standardHeaders: 'draft-8',
  legacyHeaders: false,
}));
app.use(express.json({ limit: '10kb' }));
app.use(hpp());
app.use(pinoHttp({ logger, genReqId: () => randomUUID() }));
app.use((req, res, next) => {
  res.set('X-Request-Id', req.id);
  next();
});

const noStore = (req, res, next) => {
  res.set('Cache-Control', 'no-store');
  next();
};

app.get('/health', (req, res) => {
  res.json({ status: 'ok' });
});

app.get('/api/v1/products', (req, res) => {
  const query = validate(ProductQuery, req.query, res);
  if (!query) return;
  const needle = query.q?.toLowerCase();
  const matches = products.filter((p) => (needle === undefined
      || p.name.toLowerCase().includes(needle)
      || p.description.toLowerCase().includes(needle))
    && (query.min_price === undefined || p.price_cents >= query.min_price)
    && (query.max_price === undefined || p.price_cents <= query.max_price));
  const start = (query.page - 1) * query.limit;
  res.set('X-Total-Count', String(matches.length));
  res.json({
    items: matches.slice(start, start + query.limit),
    page: query.page,
    limit: query.limit,
    total: matches.length,
  });
});

// 20 failures per 15 min per IP, as Rampart. express-rate-limit counts every request and
// takes a success back only once it has finished: requests in flight (and requests the
// client dropped) count, so 64 concurrent correct logins from one address would be
// refused from the 21st on. The benchmark raises BENCH_LOGIN_LIMIT so the Argon2 work is
// measured, not 429s.
const loginLimiter = rateLimit({
  windowMs: 15 * 60 * 1000,
  limit: Number(process.env.BENCH_LOGIN_LIMIT ?? 20),
  skipSuccessfulRequests: true,
  standardHeaders: 'draft-8',
  legacyHeaders: false,
});

app.post('/api/v1/auth/login', noStore, loginLimiter, async (req, res, next) => {
  try {
    if (!req.is('application/json')) return problem(res, 415, 'unsupported_media_type', 'Unsupported media type');
    const body = validate(Login, req.body, res);
    if (!body) return undefined;
    const user = usersByEmail.get(body.email.toLowerCase());
    // Unknown email: verify against a dummy hash anyway, so timing reveals nothing.
    const ok = await argon2.verify(user?.password_hash ?? DUMMY_HASH, body.password);
    if (!user || !ok || !user.active) return problem(res, 401, 'invalid_credentials', 'Invalid credentials');
    const sid = randomUUID();
    const refresh = randomBytes(32).toString('base64url');
    sessions.set(sid, {
      userId: user.id,
      revoked: false,
      refreshHash: createHash('sha256').update(refresh).digest('hex'),
    });
    res.cookie('__Secure-rampart_refresh', refresh, {
      httpOnly: true,
      secure: true,
      sameSite: 'strict',
      path: '/api/v1/auth',
      maxAge: REFRESH_TTL_S * 1000,
    });
    return res.json({
      access_token: await accessToken(user, sid),
      token_type: 'Bearer',
      expires_in: ACCESS_TTL_S,
      user: userBody(user),
    });
  } catch (e) {
    return next(e);
  }
});

app.get('/api/v1/me', noStore, authenticate, (req, res) => {
  res.json(userBody(req.user));
});

app.post('/api/v1/orders', noStore, authenticate, (req, res) => {
  if (!req.is('application/json')) return problem(res, 415, 'unsupported_media_type', 'Unsupported media type');
  const body = validate(Order, req.body, res);
  if (!body) return undefined;
  const needed = new Map();
  for (const line of body.items) {
    needed.set(line.product_id, (needed.get(line.product_id) ?? 0) + line.quantity);
  }
  const lines = [];
  let currency;
  for (const line of body.items) {
    const p = productsById.get(line.product_id);
    if (!p) return problem(res, 409, 'conflict', 'Unknown product');
    currency ??= p.currency;
    if (p.currency !== currency) return problem(res, 409, 'conflict', 'One currency per order');
    lines.push({
      product_id: p.id,
      name: p.name,
      quantity: line.quantity,
      unit_price_cents: p.price_cents,
      line_total_cents: p.price_cents * line.quantity,
    });
  }
  for (const [id, quantity] of needed) {
    if (productsById.get(id).stock < quantity) return problem(res, 409, 'conflict', 'Not enough stock');
  }
  // No await between the check above and this decrement: the event loop makes it atomic.
  for (const [id, quantity] of needed) productsById.get(id).stock -= quantity;
  const order = {
    id: randomUUID(),
    status: 'placed',
    items: lines,
    total_cents: lines.reduce((sum, l) => sum + l.line_total_cents, 0),
    currency,
    shipping_address: body.shipping_address,
    coupon_code: body.coupon_code ?? null,
    created_at: rfc3339(Date.now()),
  };
  orders.set(order.id, { ...order, user_id: req.user.id });
  return res.status(201).json(order);
});

app.use((req, res) => problem(res, 404, 'not_found', 'Not found'));

// Malformed JSON, a body over 10 kB, anything thrown: a problem without details.
// eslint-disable-next-line no-unused-vars
app.use((err, req, res, next) => {
  if (err.type === 'entity.too.large') return problem(res, 413, 'payload_too_large', 'Payload too large');
  if (err.type === 'entity.parse.failed') return problem(res, 400, 'validation_failed', 'Validation failed');
  req.log.error({ err }, 'request failed');
  return problem(res, 500, 'internal', 'Internal error');
});

const DUMMY_HASH = await argon2.hash(randomBytes(16).toString('hex'), ARGON2);
seedProducts();
await seedAdmin();

const server = app.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  const { address, port } = server.address();
  logger.info({ listen: `${address}:${port}` }, 'listening');
});
const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
