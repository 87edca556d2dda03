/** The GroupDocs port over the Yjs document registry. */
import * as Y from 'yjs';
import type { GroupDocContent, GroupDocs } from '../core/ports';
import { docName } from '../../shared/group-doc';
import type { DocRegistry } from './yjs/registry';

/** Group booking documents, as the core sees them. */
export function groupDocs(registry: DocRegistry): GroupDocs {
  return {
    async create(id, init) {
      await registry.create(docName(id), (doc) => {
        const draft = doc.getMap('draft');
        draft.set('title', init.title);
        draft.set('start', null);
        draft.set('end', null);
        const ids = new Y.Array<string>();
        ids.push(init.resourceIds);
        draft.set('resourceIds', ids);
        draft.set('seats', null);
        doc.getMap('server').set('status', 'draft');
      });
    },
    async read(id) {
      return (await registry.snapshot(docName(id))) as unknown as GroupDocContent;
    },
    async setServer(id, state) {
      await registry.change(docName(id), (doc) => {
        const server = doc.getMap('server');
        for (const [k, v] of Object.entries(state)) server.set(k, v);
      });
    },
    async revoke(id, userId) {
      await registry.revoke(docName(id), userId);
    },
  };
}
