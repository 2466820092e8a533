// Flavor access: the projects a private flavor (is_public = 0) is visible to (Nova's instance_type_projects).
import type { Kysely, Migration } from 'kysely'

export const flavorAccessMigration: Migration = {
  async up(db: Kysely<any>) {
    await db.schema
      .createTable('flavor_projects')
      .addColumn('flavor_id', 'text', (c) => c.notNull())
      .addColumn('project_id', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint('flavor_projects_pk', ['flavor_id', 'project_id'])
      .execute()
  },
}
