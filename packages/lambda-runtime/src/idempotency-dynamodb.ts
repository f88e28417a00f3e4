import { randomUUID } from 'node:crypto';
import { DynamoDBClient, GetItemCommand, PutItemCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { parseOptions } from '@facerec/framework';
import { z } from 'zod';
import {
  type IdempotencyClaim,
  type IdempotencyStore,
  IdempotencyStoreUnavailableError,
} from './idempotency.js';

const COMPONENT = 'DynamoDbIdempotencyStore';

/**
 * The table layout, Powertools idempotency's default one (so a table made for Powertools fits): partition key
 * `id` (string), `status`, `expiration` (epoch seconds: the table's TTL attribute), `in_progress_expiration`
 * (epoch milliseconds), `data` (the answer, when one is given: the recognition handler gives none); plus
 * `token`, the claim's owner.
 */
export const DYNAMODB_IDEMPOTENCY_ATTRIBUTES = Object.freeze({
  key: 'id',
  status: 'status',
  expiration: 'expiration',
  inProgressExpiration: 'in_progress_expiration',
  data: 'data',
  token: 'token',
});

const STATUS = Object.freeze({ inProgress: 'INPROGRESS', completed: 'COMPLETED', failed: 'FAILED' });

/** Options of {@link DynamoDbIdempotencyStore}. */
export interface DynamoDbIdempotencyStoreOptions {
  /** Table name (partition key `id`, string; TTL on `expiration`). */
  readonly table: string;
  /** How long a completed or failed record is kept (its `expiration`, the table's TTL). Default 3600. */
  readonly ttlSeconds?: number;
  /** A DynamoDB client; default one made from `region` and `endpoint` (and the SDK's credential chain). */
  readonly client?: DynamoDBClient;
  readonly region?: string;
  /** Any DynamoDB-compatible endpoint (DynamoDB Local, dynalite). */
  readonly endpoint?: string;
  readonly now?: () => number;
}

const optionsSchema = z
  .object({
    table: z.string().regex(/^[A-Za-z0-9_.-]{3,255}$/, 'a DynamoDB table name (3–255 of A-Z a-z 0-9 _ . -)'),
    ttlSeconds: z.number().int().min(1).optional(),
    client: z
      .custom<DynamoDBClient>(
        (v) => typeof (v as { send?: unknown } | null)?.send === 'function',
        'must be a DynamoDBClient',
      )
      .optional(),
    region: z.string().min(1).optional(),
    endpoint: z.url().optional(),
    now: z.custom<() => number>((v) => typeof v === 'function', 'must be a function').optional(),
  })
  .strict();

const names = {
  '#id': DYNAMODB_IDEMPOTENCY_ATTRIBUTES.key,
  '#status': DYNAMODB_IDEMPOTENCY_ATTRIBUTES.status,
  '#expiration': DYNAMODB_IDEMPOTENCY_ATTRIBUTES.expiration,
  '#ipe': DYNAMODB_IDEMPOTENCY_ATTRIBUTES.inProgressExpiration,
  '#data': DYNAMODB_IDEMPOTENCY_ATTRIBUTES.data,
  '#token': DYNAMODB_IDEMPOTENCY_ATTRIBUTES.token,
};
const pick = (...keys: (keyof typeof names)[]) => Object.fromEntries(keys.map((k) => [k, names[k]]));

/**
 * An {@link IdempotencyStore} shared by every Lambda container, on DynamoDB conditional writes: a claim is a
 * `PutItem` that succeeds only when the key is absent, failed, past its TTL, or in progress past its expiry;
 * `complete` and `fail` are `UpdateItem`s conditional on the claim's token. Each write is one item of a few
 * hundred bytes; reads happen only when a claim is refused (consistent `GetItem`, to say why).
 *
 * Written on the plain client rather than `@aws-lambda-powertools/idempotency` because the recognition handler
 * embeds a whole batch at once (Powertools wraps one function call per record) and needs the claim token,
 * which Powertools' persistence layer does not offer; the table layout is Powertools' default all the same.
 */
export class DynamoDbIdempotencyStore implements IdempotencyStore {
  readonly #table: string;
  readonly #ttlSeconds: number;
  readonly #client: DynamoDBClient;
  readonly #ownsClient: boolean;
  readonly #now: () => number;

  constructor(options: DynamoDbIdempotencyStoreOptions) {
    const settings = parseOptions(optionsSchema, options, COMPONENT);
    this.#table = settings.table;
    this.#ttlSeconds = settings.ttlSeconds ?? 3600;
    this.#now = settings.now ?? Date.now;
    this.#ownsClient = settings.client === undefined;
    this.#client =
      settings.client ??
      new DynamoDBClient({
        ...(settings.region !== undefined && { region: settings.region }),
        ...(settings.endpoint !== undefined && { endpoint: settings.endpoint }),
        // A stalled connection fails (and is retried by the SDK) instead of holding the batch to its timeout.
        requestHandler: { connectionTimeout: 5000, requestTimeout: 5000, throwOnRequestTimeout: true },
      });
  }

  /**
   * Reads one item (a key no face has) to check that the table exists and can be read, so that a wrong table
   * name or a missing permission is found at start rather than as every face failing.
   *
   * @throws IdempotencyStoreUnavailableError naming the table and what is wrong.
   */
  async check(): Promise<void> {
    await this.#client
      .send(
        new GetItemCommand({
          TableName: this.#table,
          Key: { [names['#id']]: { S: 'facerec-startup-check' } },
          ProjectionExpression: '#id',
          ExpressionAttributeNames: pick('#id'),
        }),
      )
      .catch((error: unknown) => {
        throw this.#unavailable(error);
      });
  }

  /** `error` of a call to the table, said with the table's name and what to do. */
  #unavailable(error: unknown): IdempotencyStoreUnavailableError {
    const name = (error as { name?: unknown } | null)?.name;
    const detail = error instanceof Error ? error.message : String(error);
    const problem =
      name === 'ResourceNotFoundException'
        ? `has no table "${this.#table}" (in this account and region): create it (partition key "id", string), or name the right one`
        : name === 'AccessDeniedException' || name === 'UnrecognizedClientException'
          ? `refuses access to table "${this.#table}" (${detail}): grant dynamodb:GetItem, PutItem and UpdateItem on it`
          : `cannot be used for table "${this.#table}": ${detail}`;
    return new IdempotencyStoreUnavailableError(`the idempotency store (DynamoDB) ${problem}`, {
      cause: error,
    });
  }

  async claim(key: string, options: { readonly inProgressUntil: number }): Promise<IdempotencyClaim> {
    try {
      return await this.#claim(key, options);
    } catch (error) {
      throw this.#unavailable(error);
    }
  }

  async #claim(key: string, options: { readonly inProgressUntil: number }): Promise<IdempotencyClaim> {
    // A record can change between a refused claim and the read that explains it (the other attempt failed
    // meanwhile): then claim again. Two rounds settle any such race but a pathological one.
    for (let round = 0; ; round++) {
      const now = this.#now();
      const token = randomUUID();
      try {
        await this.#client.send(
          new PutItemCommand({
            TableName: this.#table,
            Item: {
              [names['#id']]: { S: key },
              [names['#status']]: { S: STATUS.inProgress },
              [names['#token']]: { S: token },
              [names['#ipe']]: { N: String(options.inProgressUntil) },
              [names['#expiration']]: {
                N: String(Math.ceil(Math.max(now / 1000 + this.#ttlSeconds, options.inProgressUntil / 1000))),
              },
            },
            ConditionExpression:
              'attribute_not_exists(#id) OR #expiration < :nowSeconds OR #status = :failed OR ' +
              '(#status = :inProgress AND #ipe < :now)',
            ExpressionAttributeNames: pick('#id', '#expiration', '#status', '#ipe'),
            ExpressionAttributeValues: {
              ':nowSeconds': { N: String(Math.floor(now / 1000)) },
              ':now': { N: String(now) },
              ':failed': { S: STATUS.failed },
              ':inProgress': { S: STATUS.inProgress },
            },
          }),
        );
        return { status: 'claimed', token };
      } catch (error) {
        if (!conditionFailed(error)) throw error;
      }
      const { Item: item } = await this.#client.send(
        new GetItemCommand({
          TableName: this.#table,
          Key: { [names['#id']]: { S: key } },
          ConsistentRead: true,
        }),
      );
      const status = item?.[names['#status']]?.S;
      if (status === STATUS.completed) return { status: 'completed', answer: item?.[names['#data']]?.S };
      if (status === STATUS.inProgress || round >= 1) {
        return { status: 'in-progress', until: Number(item?.[names['#ipe']]?.N ?? now) };
      }
    }
  }

  async complete(key: string, token: string, answer?: string): Promise<boolean> {
    return this.#update(key, token, STATUS.completed, answer);
  }

  async fail(key: string, token: string): Promise<void> {
    await this.#update(key, token, STATUS.failed);
  }

  /** Sets the status of the caller's own claim; false when the claim is no longer its. */
  async #update(key: string, token: string, status: string, answer?: string): Promise<boolean> {
    const expiration = String(Math.ceil(this.#now() / 1000 + this.#ttlSeconds));
    try {
      await this.#client.send(
        new UpdateItemCommand({
          TableName: this.#table,
          Key: { [names['#id']]: { S: key } },
          UpdateExpression:
            answer === undefined
              ? 'SET #status = :status, #expiration = :expiration REMOVE #ipe'
              : 'SET #status = :status, #expiration = :expiration, #data = :data REMOVE #ipe',
          ConditionExpression: '#token = :token AND #status = :inProgress',
          ExpressionAttributeNames: pick(
            '#status',
            '#expiration',
            '#ipe',
            '#token',
            ...(answer === undefined ? [] : (['#data'] as const)),
          ),
          ExpressionAttributeValues: {
            ':status': { S: status },
            ':expiration': { N: expiration },
            ':token': { S: token },
            ':inProgress': { S: STATUS.inProgress },
            ...(answer === undefined ? {} : { ':data': { S: answer } }),
          },
        }),
      );
      return true;
    } catch (error) {
      if (conditionFailed(error)) return false;
      throw error;
    }
  }

  /** Destroys the client if the store made it; a client passed in is left to its owner. */
  close(): void {
    if (this.#ownsClient) this.#client.destroy();
  }
}

/** A refused condition, by name: `instanceof` fails when two copies of the SDK are installed. */
function conditionFailed(error: unknown): boolean {
  return (error as { name?: unknown } | null)?.name === 'ConditionalCheckFailedException';
}
