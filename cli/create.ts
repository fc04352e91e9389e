// `flotilla create job NAME --from=cronjob/CRONJOB`: runs a CronJob's job template now, by hand, as kubectl's
// `create job --from` does (the CronJob controller then sees the Job among its own and reports it UnexpectedJob,
// as Kubernetes' does; its schedule is not affected).
import { apiPath, dns1123SubdomainError, resourceByCliName, resourceOfKind, ANNOTATION_CRONJOB_INSTANTIATE } from '../api-types/index.js';
import type { CronJob } from '../api-types/index.js';
import { stringFlag, UsageError } from './args.js';
import { clientFor, connectionFlags } from './command.js';
import type { CliCommand } from './command.js';

const jobs = resourceOfKind('Job');
const cronJobs = resourceOfKind('CronJob');

/**
 * The Job kubectl makes from a CronJob: the template's labels, annotations (plus instantiate=manual) and spec,
 * owned by the CronJob with controller=true but without blockOwnerDeletion (kubectl leaves it out so that
 * creating needs no permission on the CronJob's finalizers).
 */
export function jobFromCronJob(cj: CronJob, name: string): Record<string, unknown> {
  const template = cj.spec.jobTemplate;
  return {
    apiVersion: jobs.apiVersion, kind: jobs.kind,
    metadata: {
      name,
      annotations: { [ANNOTATION_CRONJOB_INSTANTIATE]: 'manual', ...(template.metadata?.annotations ?? {}) },
      ...(template.metadata?.labels ? { labels: { ...template.metadata.labels } } : {}),
      ownerReferences: [{ apiVersion: cronJobs.apiVersion, kind: cronJobs.kind, name: cj.metadata.name ?? '', uid: cj.metadata.uid ?? '', controller: true }],
    },
    spec: structuredClone(template.spec),
  };
}

export const createCommand: CliCommand = {
  summary: 'create a Job from a CronJob\'s template, to run it now (job NAME --from=cronjob/NAME)',
  usage: 'flotilla create job NAME --from=cronjob/NAME [-n NAMESPACE]',
  flags: [...connectionFlags, { name: 'namespace', short: 'n', kind: 'string' }, { name: 'from', kind: 'string' }],
  async run(a, io) {
    const [type, name, ...extra] = a.positionals;
    if (!type || resourceByCliName(type) !== jobs) throw new UsageError(`create makes jobs (create job NAME --from=cronjob/NAME)${type ? `, not "${type}"` : ''}`);
    if (!name) throw new UsageError('name the job (create job NAME --from=cronjob/NAME)');
    if (extra.length > 0) throw new UsageError(`unexpected arguments: ${extra.join(' ')}`);
    const why = dns1123SubdomainError(name);
    if (why !== undefined) throw new UsageError(`invalid job name: ${why}`);
    const from = stringFlag(a, 'from');
    if (from === undefined) throw new UsageError('--from=cronjob/NAME is required');
    const slash = from.indexOf('/');
    if (slash < 0 || resourceByCliName(from.slice(0, slash)) !== cronJobs || slash === from.length - 1) {
      throw new UsageError(`--from must be cronjob/NAME, got "${from}"`);
    }
    const namespace = stringFlag(a, 'namespace') ?? 'default';
    const client = clientFor(a, io);
    try {
      const cj = await client.request<CronJob>('GET', apiPath(cronJobs, namespace, from.slice(slash + 1)));
      await client.request('POST', apiPath(jobs, namespace), jobFromCronJob(cj, name));
      io.out(`job.batch/${name} created\n`);
      return 0;
    } finally {
      client.close();
    }
  },
};
