// Glance's image members: the projects a `shared` image is shared with, each with its own status
// (pending → accepted / rejected). One row per image and project, as Glance keeps one record per
// pair (its soft-deleted record is reused when a member is added again: Skiff deletes the row).
import type { Kysely, Migration } from 'kysely'

export const imageMembersMigration: Migration = {
  async up(db: Kysely<any>) {
    await db.schema
      .createTable('image_members')
      .addColumn('image_id', 'text', (c) => c.notNull())
      .addColumn('member', 'text', (c) => c.notNull())
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint('image_members_pk', ['image_id', 'member'])
      .execute()
    // A project's memberships: what the image list of a member joins on.
    await db.schema.createIndex('image_members_member').on('image_members').columns(['member', 'image_id']).execute()
  },
}
