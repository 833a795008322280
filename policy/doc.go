// Package policy implements imaged.Policy with Glance 25.1's two default rule
// sets: Secure (enforce_secure_rbac, enforce_new_defaults, enforce_scope) and
// Legacy (the Zed defaults). Rules are pure functions of an identity, an action
// and a PolicyTarget; build targets with ImageTarget, CreateTarget and
// ListTarget exactly as Glance builds them.
//
// The full description follows (the same text is docs/policy.md): the rule of
// every action in each mode, and what Glance does outside policy that the
// catalog must do itself.
//
//	# Policy: who may do what (Glance 25.1 defaults)
//
//	Package `policy` implements `imaged.Policy` with Glance 25.1's two default rule sets:
//	`policy.Secure()` (Glance with `enforce_secure_rbac`, `enforce_new_defaults` and `enforce_scope`
//	true) and `policy.Legacy()` (Glance 25.1's out-of-the-box Zed defaults). `policy.ByName("secure" |
//	"legacy")` picks one. Everything below was read from Glance 25.1's `glance/policies/*.py`,
//	`glance/api/v2/policy.py`, `glance/api/v2/*.py` and `glance/db/sqlalchemy/api.py`, and confirmed
//	against a Glance 25.1 peer in both modes.
//
//	## Roles and the target
//
//	Roles are compared case-insensitively. Glance does not expand implied roles (Keystone does that when
//	it issues a token): `member` does not imply `reader` here, so identities must list every role they
//	hold. `admin` alone passes every rule of both sets. `IsAdmin(id)` is Glance's `context_is_admin`,
//	`role:admin`, in both modes; it decides what the catalog lets an identity see and set.
//
//	A rule sees an `imaged.PolicyTarget`; build it with these helpers, exactly as Glance does:
//
//	| helper | use for | Owner | Visibility | MemberID |
//	| --- | --- | --- | --- | --- |
//	| `policy.ImageTarget(id, img)` | every action on an existing image, members included | `img.Owner` | `img.Visibility` | caller's project if the image is `shared` and the caller's project is not its owner, else "" |
//	| `policy.CreateTarget(id, owner, vis)` | `add_image`, and `publicize_image`/`communitize_image` on create | requested owner, or the caller's project when none is given | requested visibility, or `private` when none is given | "" |
//	| `policy.ListTarget(id)` | `get_images` | caller's project | `private` | "" |
//
//	`MemberID` is Glance's `image.member` (its `%(member_id)s`): Glance sets it to the caller's project
//	for any shared image the caller does not own, *not* to the member named in the URL, and not only when
//	a membership exists (the visibility check has already required one). `IsMember` is not read by either
//	rule set. "" stands for Glance's `None`, and, as oslo.policy compares `str()` forms, a caller without
//	project **matches** an owner or member id that is "": `project_id:%(project_id)s` is true for a
//	no-project caller on an ownerless image. The rules reproduce this quirk; the mutability check below
//	stops such callers from changing ownerless images.
//
//	"mutable" below is Glance's `is_image_mutable`: admin, or `Owner != "" && caller project != "" &&
//	Owner == caller project`. Glance's database layer applies it to every image update and delete in both
//	modes; `Allow` includes it for the actions marked so.
//
//	## Rules per action
//
//	Abbreviations: **A** = `role:admin`; **M** = role `member`; **R** = role `reader`; **own** = caller's
//	project == target Owner; **mem** = caller's project == target MemberID; **vis** = target Visibility is
//	`public`, `community` or `shared`.
//
//	| action (Glance name) | secure | legacy |
//	| --- | --- | --- |
//	| `add_image` | A or (M and own) | A or own (`check_admin_or_same_owner`; any role) |
//	| `get_image` | A or (R and (own or mem or vis)) | allowed |
//	| `get_images` | A or (R and own) — with ListTarget: any reader | allowed |
//	| `modify_image` | A or (M and own and mutable) | mutable (`check_is_image_mutable`) |
//	| `delete_image` | A or (M and own and mutable) | mutable |
//	| `upload_image` | A or (M and own and mutable) | mutable |
//	| `deactivate` | A or (M and own and mutable) | mutable |
//	| `reactivate` | A or (M and own and mutable) | mutable |
//	| `publicize_image` | A | A |
//	| `communitize_image` | A or (M and own) | allowed (PATCH checks `modify_image` too) |
//	| `download_image` | A or (M and (own or mem or vis)) | allowed |
//	| `add_member` | A or (M and own) | A or (Owner != "" and own) |
//	| `delete_member` | A or (M and own) | A or own |
//	| `get_member` | A or (R and (own or mem)) | allowed |
//	| `get_members` | A or (R and (own or mem)) | allowed |
//	| `modify_member` | A or (M and mem) | A or not own |
//	| `get_image_location` | A or (R and own) | allowed |
//	| `set_image_location` | A or (M and own and mutable) | mutable |
//	| `delete_image_location` | A | mutable |
//	| `copy_image` | A | A |
//
//	Any other action, and a nil identity, is denied.
//
//	Persona view, for an image owned by projA, `shared` with projC (Y = `Allow` true; personas: admin
//	`admin`; reader = projA `reader`; member = projA `member,reader`; other = projB `member,reader`;
//	shared = projC `member,reader`; noproj = no project, `member,reader`):
//
//	| action | secure: admin reader member other shared noproj | legacy: admin reader member other shared noproj |
//	| --- | --- | --- |
//	| add_image (own project) | Y . Y Y Y Y | Y Y Y Y Y Y |
//	| get_image, get_images | Y Y Y Y Y Y | Y Y Y Y Y Y |
//	| modify/delete/upload/deactivate/reactivate/set_image_location | Y . Y . . . | Y Y Y . . . |
//	| communitize_image | Y . Y . . . | Y Y Y Y Y Y |
//	| publicize_image, copy_image | Y . . . . . | Y . . . . . |
//	| delete_image_location | Y . . . . . | Y Y Y . . . |
//	| download_image | Y . Y Y Y Y | Y Y Y Y Y Y |
//	| get_image_location | Y Y Y . . . | Y Y Y Y Y Y |
//	| add_member, delete_member | Y . Y . . . | Y Y Y . . . |
//	| get_member, get_members | Y Y Y Y Y Y | Y Y Y Y Y Y |
//	| modify_member | Y . . Y Y Y | Y . . Y Y Y |
//
//	"other" passes `get_image`, `download_image` and the member reads because the image is `shared`; the
//	catalog's visibility check (below) answers 404 before policy matters.
//
//	## What the catalog must do itself (Glance does it outside policy)
//
//	1. **Visibility first, 404.** An image is visible to: an admin (`IsAdmin`); everyone if it has no
//	   owner; everyone if `public` or `community`; its owner project; if `shared`, a project with a
//	   membership row of **any** status (pending and rejected included). Anything else is
//	   `ENOTFOUND` — never 403 — with Glance's per-endpoint message: show/patch "No image found with ID
//	   %s", delete "Failed to find image %s to delete", tags and members "Image %s not found.".
//	   Listings use `imaged.Scope`/`ImageQuery` (there, shared images need an `accepted` membership by
//	   default). Glance oddity: for a caller without project, Glance's list query does not restrict the
//	   member rows, so every shared image that has any member is listed; the catalog need not copy that.
//	2. **Forbidden becomes NotFound when the image is not readable.** When any image or member action is
//	   denied and `get_image` is also denied for that caller and target, answer `ENOTFOUND` (Glance's
//	   `ImageAPIPolicy._enforce`); otherwise `EFORBIDDEN`. Every member endpoint checks `get_image` first
//	   (secure: a project with `member` but without `reader` gets 404 on everything).
//	3. **Create.** Owner defaults to the caller's project ("" = null when the caller has none). Check
//	   `add_image` with `CreateTarget`; when denied and the requested owner differs from the caller's
//	   project, the message is "You are not permitted to create images owned by '%s'." (403). Then, if
//	   visibility was given, `VisibilityAction(v)` with the same target: 403 "You are not authorized to
//	   complete publicize_image action." (or communitize_image). The stored default visibility is `shared`.
//	4. **Patch.** Per operation, in order: replacing `/owner` by a non-admin is 403 "Owner can't be
//	   updated by non admin." (before any rule); a `/visibility` value checks `VisibilityAction(value)`
//	   then `modify_image`; any other property (add, replace or remove) checks `modify_image`;
//	   `/locations` add/replace checks `set_image_location`, remove checks `delete_image_location`.
//	   Legacy denial message: "You do not own this image"; secure: "You are not authorized to complete
//	   modify_image action.". Tag add/delete check `modify_image` (403 "Not allowed to update tags for
//	   image %s." / "Not allowed to delete tags for image %s.").
//	5. **Download** checks `download_image`, then a `deactivated` image is 403 "The requested image has
//	   been deactivated. Image data download is forbidden." for non-admins (owners included).
//	6. **Owner-less images** are visible to all but mutable by admins only; deleting one without being
//	   admin is 403 "You do not own this image" in legacy mode and 404 "Failed to find image %s to
//	   delete" in secure mode (Glance's DB layer answers).
//	7. **Members** (all four visibilities are possible, members only on `shared`):
//	   - Every member endpoint: image visible (else 404 "Image %s not found."), `get_image` allowed
//	     (else 404), then visibility must be `shared`, else "Only shared images have members." — as 403
//	     "Not allowed to create members for image %s." (add), 403 "Not allowed to list members for image
//	     %s: Only shared images have members." (list), 403 "Not allowed to update members for image %s."
//	     (update), 403 "Not allowed to delete members for image %s." (delete), and **404** for show.
//	     Admins get these 403s too.
//	   - Member rows a caller can see: an admin all; the image's owner project all; any other project
//	     only its own row. A row the caller cannot see is 404 "%s not found in the member list of the
//	     image %s." (show, update, delete).
//	   - Add: `add_member` (403 "Not allowed to create members for image %s."); duplicate 409 "Member %s
//	     is duplicated for image %s"; the member limit 413.
//	   - List: `get_members` (403 as above); the result is the visible rows (owner: all; member: its own).
//	   - Show: the row lookup, then `get_member`; every 403 here becomes 404.
//	   - Update status: row lookup, `get_member`, `modify_member` (403 "Not allowed to update members for
//	     image %s."). Only the member project itself can change its status; the owner cannot (403), and a
//	     third project cannot see the row (404).
//	   - Delete: row lookup, `delete_member` (403 "Not allowed to delete members for image %s.").
//	8. **Deactivate/reactivate** check `deactivate`/`reactivate` after the visibility lookup; the state
//	   checks are the catalog's.
//
//	Observed on the peer (status legacy / secure): reader creates an image 201 / 403; member publicizes
//	403 / 403; member deactivates its own image 204 / 204; reader deactivates 204 / 403; projB member
//	patches, tags, deletes or deactivates a public or community image of another project 403 / 403;
//	reader of the owner adds a member 200 / 403; the owner sets a member's status 403 / 403; the member
//	project (member role) sets its own status 200 / 200, with only the reader role 200 / 403; a third
//	project sets it 404 / 404; projC member adds a member 403 / 403; admin lists members of a public
//	image 403 / 403.
package policy
